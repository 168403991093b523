-- The grid of the paper's Table 3: networks x energies x optimisers on
-- one or more datasets, each cell trained over several seeds, written
-- as a markdown table of test accuracy mean +- std. --width, --subset
-- and --max-batches shrink it for machines smaller than the paper's.
--
--   ./ebl scripts/table3.lua --data mnist --width 0.25 --epochs 1
local ebl = require 'ebl'

local DEFAULTS = {
  data = 'mnist', networks = 'hierarchical,skiprec-simple',
  energies = 'pc,bipc,ep,bp', optims = 'adam,lalr', seeds = '1,2',
  width = 0.25, epochs = 1, batch = 128, steps = 20, state_lr = 0.1,
  lr = 1e-3, out = 'table3.md',
}

local FLAGS = {
  data = 'datasets, comma-separated: mnist, fashion-mnist, cifar10, '
    .. 'cifar100, tiny-imagenet',
  data_dir = "the dataset's folder (one dataset) or their parent",
  networks = 'hierarchical, skiprec-simple, skiprec-complex, cnn, mlp',
  energies = 'pc, bipc, ep, bp', optims = 'adam, lalr, lars, sgd, adamw',
  seeds = 'seeds, comma-separated', width = 'channel factor',
  subset = 'training samples used', test_subset = 'test samples used',
  epochs = 'epochs per cell', batch = 'batch size',
  max_batches = 'batches per epoch', steps = 'inference steps',
  state_lr = 'state step size', lr = 'learning rate',
  threads = 'threads of the kernels', out = 'the markdown file written',
}
local NUMBERS = {width = true, subset = true, test_subset = true,
  epochs = true, batch = true, max_batches = true, steps = true,
  state_lr = true, lr = true, threads = true}

local READERS = {mnist = {'mnist', 'mnist'},
  ['fashion-mnist'] = {'fashion_mnist', 'fashion-mnist'},
  cifar10 = {'cifar10', 'cifar-10'}, cifar100 = {'cifar100', 'cifar-100'},
  ['tiny-imagenet'] = {'tiny_imagenet', 'tiny-imagenet-200'}}
local TITLES = {mnist = 'MNIST', ['fashion-mnist'] = 'Fashion-MNIST',
  cifar10 = 'CIFAR10', cifar100 = 'CIFAR100',
  ['tiny-imagenet'] = 'Tiny ImageNet'}
local METHODS = {pc = 'PC', bipc = 'BiPC', bipc_sq = 'BiPC (eq. 9)',
  ep = 'EP', bp = 'backprop'}
local OPTIMS = {adam = 'Adam', lalr = 'LALR', lars = 'LARS', sgd = 'SGD',
  adamw = 'AdamW'}

local function usage()
  local names = {}
  for k in pairs(FLAGS) do names[#names + 1] = k end
  table.sort(names)
  local lines = {'usage: ebl scripts/table3.lua [--flag value ...]', ''}
  for _, k in ipairs(names) do
    lines[#lines + 1] = ('  --%-14s %s%s'):format(k:gsub('_', '-'),
      FLAGS[k], DEFAULTS[k] and (' [' .. DEFAULTS[k] .. ']') or '')
  end
  return table.concat(lines, '\n')
end

local function bad_usage(msg)
  io.stderr:write('table3.lua: ', msg, '\n\n', usage(), '\n')
  os.exit(1)
end

local function list(text)
  local items = {}
  for part in text:gmatch('[^,]+') do items[#items + 1] = part end
  return items
end

local function parse(args)
  local cfg = {}
  for k, v in pairs(DEFAULTS) do cfg[k] = v end
  local i = 1
  while i <= #args do
    local name = args[i]:match('^%-%-([%w%-]+)$')
    if name == 'help' then
      print(usage())
      os.exit(0)
    end
    local key = name and name:gsub('%-', '_')
    if not key or not FLAGS[key] then
      bad_usage('unknown argument ' .. args[i])
    end
    local value = args[i + 1]
    if value == nil then bad_usage('--' .. name .. ' needs a value') end
    if NUMBERS[key] then
      value = tonumber(value)
      if value == nil or value <= 0 then
        bad_usage('--' .. name .. ' needs a number > 0')
      end
      value = math.tointeger(value) or value
    end
    cfg[key] = value
    i = i + 2
  end
  return cfg
end

---------------------------------------------------------------------
-- Cells

-- The datasets that are here, and a line for each that is not.
local function load_datasets(cfg)
  local names, found, missing = list(cfg.data), {}, {}
  for _, name in ipairs(names) do
    local reader = READERS[name]
    if not reader then bad_usage('unknown dataset ' .. name) end
    local dir = cfg.data_dir
    if dir and #names > 1 then dir = dir .. '/' .. reader[2] end
    local ok, d = pcall(ebl.data[reader[1]], dir)
    if ok then
      found[#found + 1] = {name = name, data = d}
    else
      missing[#missing + 1] = ('%s is not on this machine: %s'):format(
        name, tostring(d))
    end
  end
  return found, missing
end

-- Why a cell cannot run, or nil.
local function not_applicable(network, energy)
  if energy == 'ep' and network ~= 'mlp' then
    return 'EP needs linear edges and one time step'
  end
end

local function build(cfg, network, energy, ds)
  local shape, classes = ds.shape, ds.num_classes
  local opts = {energy = energy}
  local g
  if network == 'mlp' then
    g = ebl.models.mlp{sizes = {shape[1] * shape[2] * shape[3],
      math.max(1, math.floor(256 * cfg.width + 0.5)), classes},
      act_on = energy == 'ep' and 'node' or nil}
  else
    g = ebl.models[network:gsub('%-', '_')]{width = cfg.width,
      size = shape[2], channels = shape[1], classes = classes}
  end
  if network:find('^skiprec') then opts.time_steps = 5 end
  if energy == 'ep' then opts.loss = 'mse' end
  return ebl.model(g, opts)
end

-- Trains one cell for one seed; returns the test accuracy.
local function run_cell(cfg, d, network, energy, optim, seed)
  ebl.manual_seed(seed)
  local m = build(cfg, network, energy, d.train)
  local s = ebl.train(m, d.train, {test = d.test, epochs = cfg.epochs,
    batch = cfg.batch, optim = optim, lr = cfg.lr, steps = cfg.steps,
    state_lr = cfg.state_lr, seed = seed, subset = cfg.subset,
    test_subset = cfg.test_subset, max_batches = cfg.max_batches,
    quiet = true})
  return s.test_acc
end

local function mean_std(values)
  local n, sum = #values, 0
  for _, v in ipairs(values) do sum = sum + v end
  local mean, sq = sum / n, 0
  for _, v in ipairs(values) do sq = sq + (v - mean) ^ 2 end
  return mean, n > 1 and math.sqrt(sq / (n - 1)) or 0
end

---------------------------------------------------------------------
-- The table

local function header(cfg, found)
  local lines = {
    ('# Table 3, as run by ebl: test accuracy (%%), mean ± std over '
      .. 'seeds %s'):format(cfg.seeds:gsub(',', ', ')),
    '',
    ('Width %g, %d epoch(s), batch %d, %d inference steps, state lr %g, '
      .. 'lr %g%s%s%s.'):format(cfg.width, cfg.epochs, cfg.batch,
      cfg.steps, cfg.state_lr, cfg.lr,
      cfg.subset and (', %d training samples'):format(cfg.subset) or '',
      cfg.test_subset and (', %d test samples'):format(cfg.test_subset)
        or '',
      cfg.max_batches and (', %d batches per epoch'):format(
        cfg.max_batches) or ''),
    '',
  }
  local cols = {'network', 'method'}
  for _, f in ipairs(found) do cols[#cols + 1] = TITLES[f.name] end
  lines[#lines + 1] = '| ' .. table.concat(cols, ' | ') .. ' |'
  lines[#lines + 1] = '|' .. ('---|'):rep(#cols)
  return lines
end

local function main(args)
  local cfg = parse(args)
  if cfg.threads then ebl.set_num_threads(cfg.threads) end
  local found, missing = load_datasets(cfg)
  for _, line in ipairs(missing) do print(line) end
  if #found == 0 then
    error('no dataset of the grid is on this machine; nothing to run', 0)
  end
  local lines, notes = header(cfg, found), {}
  local seeds = list(cfg.seeds)
  for _, network in ipairs(list(cfg.networks)) do
    for _, energy in ipairs(list(cfg.energies)) do
      for _, optim in ipairs(list(cfg.optims)) do
        local label = ('%s (%s)'):format(METHODS[energy] or energy,
          OPTIMS[optim] or optim)
        local cells = {network, label}
        for _, f in ipairs(found) do
          local why = not_applicable(network, energy)
          if why then
            cells[#cells + 1] = 'n/a'
            notes[why] = true
          else
            local accs = {}
            for _, seed in ipairs(seeds) do
              local t0 = ebl.clock()
              accs[#accs + 1] = 100 * run_cell(cfg, f.data, network, energy,
                optim, math.tointeger(tonumber(seed)))
              print(('%s, %s, %s, seed %s: %.2f%% (%.1f s)'):format(
                network, label, f.name, seed, accs[#accs],
                ebl.clock() - t0))
              io.stdout:flush()
            end
            cells[#cells + 1] = ('%.2f ± %.2f'):format(mean_std(accs))
          end
        end
        lines[#lines + 1] = '| ' .. table.concat(cells, ' | ') .. ' |'
      end
    end
  end
  lines[#lines + 1] = ''
  for why in pairs(notes) do lines[#lines + 1] = 'n/a: ' .. why .. '.' end
  for _, line in ipairs(missing) do
    lines[#lines + 1] = (line:gsub('\n.*', ''))
  end
  local text = table.concat(lines, '\n') .. '\n'
  local f = assert(io.open(cfg.out, 'w'))
  f:write(text)
  f:close()
  print(text)
  print('written: ' .. cfg.out)
end

local ok, err = pcall(main, arg or {})
if not ok then
  io.stderr:write('table3.lua: ', tostring(err), '\n')
  os.exit(1)
end
