-- Fig. 5: the training loss of PC and BiPC (and any other energy) over
-- training, on the simple skip-connection recurrent network with Adam.
-- Writes <out>.dat (batch, then a running mean of the loss per energy)
-- and <out>.png.
--
--   ./ebl scripts/figures/fig5.lua --data fashion-mnist --subset 2000
local ebl = require 'ebl'
local plot = dofile((arg[0]:match('^(.*)/') or '.') .. '/plot.lua')

local DEFAULTS = {data = 'fashion-mnist', data_dir = '',
  model = 'skiprec-simple', width = 0.125, energies = 'pc,bipc',
  epochs = 2, subset = 2000, batch = 32, steps = 20, state_lr = 0.1,
  lr = 1e-3, every = 10, seed = 1, threads = 0, out = 'fig5'}
local USAGE = [[
usage: ebl scripts/figures/fig5.lua [--flag value ...]
  --data fashion-mnist  --data-dir DIR  --model skiprec-simple | mlp
  --width 0.125  --energies pc,bipc  --epochs 2  --subset 2000  --batch 32
  --steps 20  --state-lr 0.1  --lr 1e-3  --every 10 (batches per point)
  --seed 1  --threads N  --out fig5]]

local function build(cfg, energy, ds)
  ebl.manual_seed(cfg.seed)
  if cfg.model == 'mlp' then
    local n = ds.shape[1] * ds.shape[2] * ds.shape[3]
    return ebl.model(ebl.models.mlp{sizes = {n, 256, 256, ds.num_classes}},
      {energy = energy})
  end
  local g = ebl.models.skiprec_simple{width = cfg.width, size = ds.shape[2],
    channels = ds.shape[1], classes = ds.num_classes}
  return ebl.model(g, {energy = energy, time_steps = 5})
end

-- The running mean of the loss every cfg.every batches.
local function curve(cfg, energy, ds)
  local m = build(cfg, energy, ds)
  local points, sum, n = {}, 0, 0
  ebl.train(m, ds, {epochs = cfg.epochs, batch = cfg.batch, lr = cfg.lr,
    steps = cfg.steps, state_lr = cfg.state_lr, seed = cfg.seed,
    subset = cfg.subset, quiet = true,
    on_batch = function(_, _, loss)
      sum, n = sum + loss, n + 1
      if n == cfg.every then
        points[#points + 1] = sum / n
        sum, n = 0, 0
      end
    end})
  print(('%s: final loss %.4f'):format(energy, points[#points] or 0 / 0))
  return points
end

plot.main(function(args)
  local cfg = plot.flags(args, DEFAULTS, USAGE)
  if cfg.threads > 0 then ebl.set_num_threads(cfg.threads) end
  local ds = plot.dataset(cfg).train
  local energies, curves = {}, {}
  for e in cfg.energies:gmatch('[^,]+') do
    energies[#energies + 1] = e
    curves[#curves + 1] = curve(cfg, e, ds)
  end
  local rows = {}
  for i = 1, #curves[1] do
    local row = {i * cfg.every}
    for j = 1, #curves do row[j + 1] = curves[j][i] or 0 / 0 end
    rows[i] = row
  end
  local data = cfg.out .. '.dat'
  plot.write_data(data, 'batch ' .. table.concat(energies, ' '), rows)
  local lines = {}
  for j, e in ipairs(energies) do
    lines[j] = ('%q using 1:%d with lines lw 2 title %q'):format(data,
      j + 1, e)
  end
  plot.gnuplot(('set title "Training loss, %s, %s (Adam)"\n'
    .. 'set xlabel "batch"\nset ylabel "loss"\nset grid\n'
    .. 'plot %s\n'):format(cfg.data, cfg.model, table.concat(lines, ', ')),
    cfg.out .. '.png', data)
end)
