-- Fig. 2a: per layer, ||w|| / (lr ||dw||) (weight and bias together)
-- after training PC and BiPC for a few epochs, from m:weight_ratios at
-- the gradients of one more batch. Writes <out>.dat and <out>.png.
--
--   ./ebl scripts/figures/fig2a.lua --model mlp --epochs 1
local ebl = require 'ebl'
local plot = dofile((arg[0]:match('^(.*)/') or '.') .. '/plot.lua')

local DEFAULTS = {data = 'fashion-mnist', data_dir = '',
  model = 'skiprec-simple', width = 0.125, energies = 'pc,bipc',
  epochs = 1, subset = 2000, batch = 32, steps = 20, state_lr = 0.1,
  lr = 1e-3, seed = 1, threads = 0, out = 'fig2a'}
local USAGE = [[
usage: ebl scripts/figures/fig2a.lua [--flag value ...]
  --data fashion-mnist  --data-dir DIR  --model skiprec-simple | mlp
  --width 0.125  --energies pc,bipc  --epochs 1  --subset 2000  --batch 32
  --steps 20  --state-lr 0.1  --lr 1e-3  --seed 1  --threads N
  --out fig2a]]

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

-- The ratios of a model trained with energy, and the layer names.
local function ratios(cfg, energy, ds)
  local m = build(cfg, energy, ds)
  ebl.train(m, ds, {epochs = cfg.epochs, batch = cfg.batch, lr = cfg.lr,
    steps = cfg.steps, state_lr = cfg.state_lr, seed = cfg.seed,
    subset = cfg.subset, quiet = true})
  local loader = ebl.data.loader(ds, {batch = cfg.batch, seed = cfg.seed,
    normalize = true, subset = cfg.subset})
  local input = m.graph.nodes[1].shape
  for x, y in loader:epoch(cfg.epochs + 1) do
    m:infer(x:reshape{x:size(1), table.unpack(input)}, y,
      {steps = cfg.steps, state_lr = cfg.state_lr})
    break
  end
  loader:close()
  return m:weight_ratios(cfg.lr)
end

plot.main(function(args)
  local cfg = plot.flags(args, DEFAULTS, USAGE)
  if cfg.threads > 0 then ebl.set_num_threads(cfg.threads) end
  local ds = plot.dataset(cfg).train
  local energies, columns, names = {}, {}, nil
  for e in cfg.energies:gmatch('[^,]+') do
    energies[#energies + 1] = e
    columns[#columns + 1], names = ratios(cfg, e, ds)
  end
  local rows = {}
  for i = 1, #names do
    local row = {i}
    for j = 1, #columns do row[j + 1] = columns[j][i] end
    rows[i] = row
    print(('%-14s %s'):format(names[i], table.concat(row, '  ', 2)))
  end
  local data = cfg.out .. '.dat'
  plot.write_data(data, 'layer ' .. table.concat(energies, ' ') .. ' ('
    .. table.concat(names, ', ') .. ')', rows)
  local lines = {}
  for j, e in ipairs(energies) do
    lines[j] = ('%q using 1:%d with linespoints lw 2 title %q'):format(
      data, j + 1, e)
  end
  local tics = {}
  for i, n in ipairs(names) do tics[i] = ('%q %d'):format(n, i) end
  plot.gnuplot(('set title "||w|| / (lr ||dw||) per layer after %d '
    .. 'epoch(s), %s"\nset logscale y\nset grid\nset xtics rotate by -30 '
    .. '(%s)\nset ylabel "ratio"\nplot %s\n'):format(cfg.epochs, cfg.model,
    table.concat(tics, ', '), table.concat(lines, ', ')),
    cfg.out .. '.png', data)
end)
