-- Fig. 4: |dF/dv| of the shallow, middle and deep nodes (2, 4, 6) of
-- the simple skip-connection recurrent network over a long inference
-- (Table 2: 200 steps, state lr 0.01), for PC, BiPC (eq. 10) and BiPC
-- (eq. 9), with forward edges only, with recurrent edges, and with
-- recurrent and skip edges. From m:infer{record = true} and m:trace().
-- Writes <out>-<energy>.dat and <out>.png (one panel per energy).
--
--   ./ebl scripts/figures/fig4.lua --data fashion-mnist --width 0.125
local ebl = require 'ebl'
local plot = dofile((arg[0]:match('^(.*)/') or '.') .. '/plot.lua')

local DEFAULTS = {data = 'fashion-mnist', data_dir = '', width = 0.125,
  energies = 'pc,bipc,bipc_sq', batch = 16, steps = 200, state_lr = 0.01,
  train_batches = 20, lr = 1e-3, seed = 1, threads = 0, out = 'fig4'}
local USAGE = [[
usage: ebl scripts/figures/fig4.lua [--flag value ...]
  --data fashion-mnist  --data-dir DIR  --width 0.125
  --energies pc,bipc,bipc_sq  --batch 16  --steps 200  --state-lr 0.01
  --train-batches 20 (trained before measuring)  --lr 1e-3  --seed 1
  --threads N  --out fig4]]

local VARIANTS = {
  {name = 'forward', recurrent = false, skip = false},
  {name = 'forward+recurrent', recurrent = true, skip = false},
  {name = 'forward+recurrent+skip', recurrent = true, skip = true},
}
local NODES = {'n2', 'n4', 'n6'}

-- |dF/dv| per step of nodes n2, n4, n6 for one energy and variant.
local function trace(cfg, energy, variant, ds)
  ebl.manual_seed(cfg.seed)
  local g = ebl.models.skiprec_simple{width = cfg.width, size = ds.shape[2],
    channels = ds.shape[1], classes = ds.num_classes,
    recurrent = variant.recurrent, skip = variant.skip}
  local m = ebl.model(g, {energy = energy, time_steps = 5})
  local infer = {steps = cfg.steps, state_lr = cfg.state_lr}
  if cfg.train_batches > 0 then
    ebl.train(m, ds, {epochs = 1, batch = cfg.batch, lr = cfg.lr,
      steps = 20, state_lr = 0.1, seed = cfg.seed, quiet = true,
      max_batches = cfg.train_batches})
  end
  local loader = ebl.data.loader(ds, {batch = cfg.batch, seed = cfg.seed,
    normalize = true})
  for x, y in loader:epoch(2) do
    infer.record = true
    m:infer(x, y, infer)
    break
  end
  loader:close()
  local grads, cols = m:trace().grad, {}
  for i, name in ipairs(NODES) do cols[i] = m.graph.by_name[name].index end
  local rows = {}
  for step, row in ipairs(grads) do
    rows[step] = {row[cols[1]], row[cols[2]], row[cols[3]]}
  end
  return rows
end

plot.main(function(args)
  local cfg = plot.flags(args, DEFAULTS, USAGE)
  if cfg.threads > 0 then ebl.set_num_threads(cfg.threads) end
  local ds = plot.dataset(cfg).train
  local panels, energies = {}, {}
  for e in cfg.energies:gmatch('[^,]+') do energies[#energies + 1] = e end
  for _, e in ipairs(energies) do
    local traces = {}
    for v, variant in ipairs(VARIANTS) do
      traces[v] = trace(cfg, e, variant, ds)
      local last = traces[v][#traces[v]]
      print(('%-8s %-24s |dF/dv| at the end: n2 %.3g  n4 %.3g  n6 %.3g')
        :format(e, variant.name, last[1], last[2], last[3]))
    end
    local rows, header = {}, {'step'}
    for step = 1, #traces[1] do
      local row = {step - 1}
      for v = 1, #VARIANTS do
        for n = 1, #NODES do row[#row + 1] = traces[v][step][n] end
      end
      rows[step] = row
    end
    for _, variant in ipairs(VARIANTS) do
      for _, n in ipairs(NODES) do
        header[#header + 1] = variant.name .. ':' .. n
      end
    end
    local data = ('%s-%s.dat'):format(cfg.out, e)
    plot.write_data(data, table.concat(header, ' '), rows)
    local lines = {}
    for v = 1, #VARIANTS do
      for n = 1, #NODES do
        lines[#lines + 1] = ('%q using 1:%d with lines lc %d dt %d '
          .. 'title %q'):format(data, 1 + (v - 1) * #NODES + n, v, n,
          VARIANTS[v].name .. ' ' .. NODES[n])
      end
    end
    panels[#panels + 1] = ('set title "%s"\nplot %s\n'):format(e,
      table.concat(lines, ', '))
  end
  plot.gnuplot(('set multiplot layout %d,1\nset logscale y\nset grid\n'
    .. 'set xlabel "inference step"\nset ylabel "|dF/dv|"\n'
    .. 'set key outside right top vertical\n%sunset multiplot\n'):format(
    #panels, table.concat(panels)), cfg.out .. '.png', cfg.out .. '-*.dat',
    ('1200,%d'):format(380 * #panels))
end)
