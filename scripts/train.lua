-- The experiment runner: trains one network on one dataset with one
-- energy and prints, first, the configuration, then one line per epoch,
-- and last one JSON object (test_acc, train_seconds, samples_per_second,
-- epochs, config). `make run` runs it with the defaults below.
--
--   ./ebl scripts/train.lua --energy pc --epochs 3 --subset 10000
local ebl = require 'ebl'

-- The main job: what `make run` trains (README.md names these). PC,
-- since BiPC in the engine's default reading stays below 88% within
-- the five minutes of two cores (docs/TRAINING.md has the runs).
local DEFAULTS = {
  data = 'fashion-mnist', model = 'mlp', hidden = '256,256', act = 'tanh',
  width = 1, energy = 'pc', steps = 20, state_lr = 0.1, tol = 0,
  optim = 'adam', lr = 1e-3, batch = 128, epochs = 6, seed = 1,
  schedule = 'cosine', device = 'cpu',
}

-- Flags: name, kind, what it means.
local FLAGS = {
  {'data', 'choice', 'fashion-mnist | mnist | cifar10 | cifar100 | '
    .. 'tiny-imagenet', {'fashion-mnist', 'mnist', 'cifar10', 'cifar100',
    'tiny-imagenet'}},
  {'data-dir', 'string', 'folder of the dataset (default: $EBL_DATA/<name>,'
    .. ' then /usr/share/datasets/<name>)'},
  {'subset', 'int', 'train on the first N training samples'},
  {'test-subset', 'int', 'evaluate on the first N test samples'},
  {'model', 'choice', 'mlp | hierarchical | skiprec-simple | '
    .. 'skiprec-complex | cnn', {'mlp', 'hierarchical', 'skiprec-simple',
    'skiprec-complex', 'cnn'}},
  {'width', 'number', 'channel factor of the convolutional models'},
  {'hidden', 'list', 'hidden sizes of the mlp, e.g. 256,256'},
  {'act', 'choice', 'activation: tanh | relu | sigmoid | leaky_relu',
    {'tanh', 'relu', 'sigmoid', 'leaky_relu'}},
  {'energy', 'choice', 'pc | bipc | bipc_sq | ep | bp',
    {'pc', 'bipc', 'bipc_sq', 'ep', 'bp'}},
  {'steps', 'int', 'inference steps per batch'},
  {'state-lr', 'number', 'step size of the state updates'},
  {'tol', 'number', 'relative energy change that ends inference early'},
  {'state-optim', 'choice', 'optimiser of the states: sgd | momentum | '
    .. 'adam', {'sgd', 'momentum', 'adam'}},
  {'backtrack', 'bool', 'sgd on the states: take back a step that raises '
    .. 'F and halve the state lr'},
  {'feedback-weight', 'number', 'bipc: weight of the feedback error'},
  {'beta', 'number', 'weight of the output cost (EP: the nudge)'},
  {'optim', 'choice', 'sgd | adam | adamw | lars | lalr',
    {'sgd', 'adam', 'adamw', 'lars', 'lalr'}},
  {'lr', 'number', 'learning rate of the parameters'},
  {'schedule', 'choice', 'learning-rate schedule: none | cosine | step '
    .. '(x0.1 every third of the run)', {'none', 'cosine', 'step'}},
  {'batch', 'int', 'batch size'},
  {'epochs', 'int', 'epochs (in all, counting those of a resumed run)'},
  {'seed', 'int', 'seed of the weights and of the batch order'},
  {'threads', 'int', 'threads of the kernels (default: the cores not '
    .. 'busy with other work, at least 1; a resumed run: its own)'},
  {'device', 'choice', 'cpu | cuda', {'cpu', 'cuda'}},
  {'log', 'string', 'per-epoch log: JSON lines, or CSV for a .csv name'},
  {'save', 'string', 'checkpoint written after every epoch'},
  {'resume', 'string', 'checkpoint to continue from'},
  {'help', 'bool', 'this text'},
}

local function usage()
  local lines = {'usage: ebl scripts/train.lua [--flag value ...]', '',
    'Trains a network on a dataset and prints one line per epoch, then '
    .. 'a JSON summary.', ''}
  for _, f in ipairs(FLAGS) do
    local key = f[1]:gsub('%-', '_')
    local default = DEFAULTS[key]
    lines[#lines + 1] = ('  --%-16s %s%s'):format(f[1], f[3],
      default ~= nil and (' [' .. tostring(default) .. ']') or '')
  end
  return table.concat(lines, '\n')
end

local function bad_usage(msg)
  io.stderr:write('train.lua: ', msg, '\n\n', usage(), '\n')
  os.exit(1)
end

-- A flag's value converted to its kind.
local function convert(flag, value)
  local name, kind, choices = flag[1], flag[2], flag[4]
  if kind == 'int' then
    local v = math.tointeger(tonumber(value))
    if v == nil or v < (name == 'seed' and 0 or 1) then
      bad_usage(('--%s needs an integer >= %d, got %s'):format(name,
        name == 'seed' and 0 or 1, value))
    end
    return v
  elseif kind == 'number' then
    local v = tonumber(value)
    if v == nil or v ~= v then
      bad_usage(('--%s needs a number, got %s'):format(name, value))
    end
    return v
  elseif kind == 'choice' then
    for _, c in ipairs(choices) do
      if c == value then return value end
    end
    bad_usage(('--%s must be one of %s, got %s'):format(name,
      table.concat(choices, ', '), value))
  elseif kind == 'list' then
    local sizes = {}
    for part in value:gmatch('[^,]+') do
      local v = math.tointeger(tonumber(part))
      if v == nil or v < 1 then
        bad_usage(('--%s needs sizes like 256,256, got %s'):format(name,
          value))
      end
      sizes[#sizes + 1] = v
    end
    return value
  end
  return value
end

-- The configuration: DEFAULTS overridden by the command line.
local function parse(args)
  local by_name = {}
  for _, f in ipairs(FLAGS) do by_name[f[1]] = f end
  local cfg, given = {}, {}
  for k, v in pairs(DEFAULTS) do cfg[k] = v end
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, value = a:match('^%-%-([%w%-]+)=(.*)$')
    if not name then name = a:match('^%-%-([%w%-]+)$') end
    local flag = name and by_name[name]
    if not flag then bad_usage(('unknown argument %s'):format(a)) end
    if flag[2] == 'bool' then
      cfg[name] = true
    else
      if value == nil then
        i = i + 1
        value = args[i]
        if value == nil then bad_usage(('--%s needs a value'):format(name)) end
      end
      local key = name:gsub('%-', '_')
      cfg[key] = convert(flag, value)
      given[key] = true
    end
    i = i + 1
  end
  return cfg, given
end

---------------------------------------------------------------------
-- Data and model

local READERS = {['fashion-mnist'] = 'fashion_mnist', mnist = 'mnist',
  cifar10 = 'cifar10', cifar100 = 'cifar100',
  ['tiny-imagenet'] = 'tiny_imagenet'}

local function load_data(cfg)
  return ebl.data[READERS[cfg.data]](cfg.data_dir)
end

local function hidden_sizes(text)
  local sizes = {}
  for part in text:gmatch('[^,]+') do sizes[#sizes + 1] = tonumber(part) end
  return sizes
end

-- The graph of cfg.model for samples of shape {C, H, W} in k classes.
local function build_graph(cfg, shape, classes)
  local c, size = shape[1], shape[2]
  if cfg.model == 'mlp' then
    local sizes = {c * shape[2] * shape[3]}
    for _, h in ipairs(hidden_sizes(cfg.hidden)) do
      sizes[#sizes + 1] = math.max(1, math.floor(h * cfg.width + 0.5))
    end
    sizes[#sizes + 1] = classes
    return ebl.models.mlp{sizes = sizes, act = cfg.act,
      act_on = cfg.energy == 'ep' and 'node' or nil}, sizes
  end
  local builder = ebl.models[cfg.model:gsub('%-', '_')]
  return builder{width = cfg.width, size = size, channels = c,
    classes = classes, act = cfg.act}
end

local function build_model(cfg, shape, classes)
  ebl.manual_seed(cfg.seed)
  local g, sizes = build_graph(cfg, shape, classes)
  local opts = {energy = cfg.energy, feedback_weight = cfg.feedback_weight}
  if cfg.model:find('^skiprec') then opts.time_steps = 5 end
  if cfg.energy == 'ep' then opts.loss = 'mse' end
  return ebl.model(g, opts), sizes
end

-- EP settles slowly and needs a small nudge: its own inference
-- defaults where the command line gives none.
local function energy_defaults(cfg, given)
  if cfg.energy == 'ep' then
    if not given.steps then cfg.steps = 30 end
    if not given.state_lr then cfg.state_lr = 0.5 end
    if not given.beta then cfg.beta = 0.3 end
  end
end

-- The cores other processes leave free: all cores less the 1-minute
-- load average, at least one. On a shared machine a thread per core
-- would make every parallel loop wait for a thread that is not running
-- (measured: 15 times slower on 2 cores under a load of 4).
local function free_cores()
  local cores = ebl.get_num_threads()
  local f = io.open('/proc/loadavg', 'r')
  local load = f and tonumber(f:read('l'):match('^(%S+)'))
  if f then f:close() end
  if not load then return cores end
  return math.max(1, math.min(cores, cores - math.floor(load + 0.5)))
end

-- The thread count: the flag, else a resumed run's own (so that it
-- continues bit for bit), else the free cores.
local function thread_count(cfg, given)
  if given.threads then return cfg.threads end
  if cfg.resume then
    local ok, _, meta = pcall(ebl.load, cfg.resume)
    local state = ok and meta.trainer and ebl.json.decode(meta.trainer)
    local saved = state and state.config and state.config.threads
    if math.type(saved) == 'integer' then return saved end
  end
  return free_cores()
end

-- --device cuda: tensors made from here on live on the GPU, or a clear
-- error when there is none.
local function use_device(cfg)
  if cfg.device ~= 'cuda' then return end
  if not (ebl.cuda and ebl.cuda.available()) then
    error(('--device cuda: no GPU to run on (%s); use --device cpu')
      :format(ebl.cuda and ebl.cuda.reason() or 'this ebl has no CUDA'), 0)
  end
  ebl.set_default_device('cuda')
end

---------------------------------------------------------------------
-- Running

local function describe(cfg, d, sizes)
  local net = cfg.model
  if sizes then
    net = net .. ' ' .. table.concat(sizes, '-') .. ' ' .. cfg.act
  else
    net = net .. (' width %g'):format(cfg.width)
  end
  local energy = cfg.energy
  if cfg.energy:find('^bipc') then
    energy = energy .. (' (feedback weight %g)'):format(
      cfg.feedback_weight or 0.1)
  end
  local lines = {
    ('data: %s (%d train%s, %d test), samples %s'):format(cfg.data,
      #d.train, cfg.subset and (', using ' .. cfg.subset) or '', #d.test,
      table.concat(d.train.shape, 'x')),
    ('model: %s, energy %s'):format(net, energy),
    ('inference: %d steps, state lr %g (%s), tol %g%s'):format(cfg.steps,
      cfg.state_lr, (cfg.state_optim or 'sgd') ..
      (cfg.backtrack and ', backtracking' or ''), cfg.tol,
      cfg.beta and (', beta %g'):format(cfg.beta) or ''),
    ('learning: %s lr %g, schedule %s, batch %d, %d epochs'):format(
      cfg.optim, cfg.lr, cfg.schedule, cfg.batch, cfg.epochs),
    ('run: seed %d, %d of %d cores, %s%s%s%s'):format(cfg.seed,
      cfg.threads, cfg.cores,
      cfg.device, cfg.log and (', log ' .. cfg.log) or '',
      cfg.save and (', save ' .. cfg.save) or '',
      cfg.resume and (', resume ' .. cfg.resume) or ''),
  }
  return table.concat(lines, '\n')
end

local function schedule(cfg)
  if cfg.schedule == 'none' then return nil end
  if cfg.schedule == 'step' then
    return {kind = 'step', gamma = 0.1,
      every = math.max(1, math.ceil(cfg.epochs / 3))}
  end
  return 'cosine'
end

local function main(args)
  local cfg, given = parse(args)
  if cfg.help then
    print(usage())
    return
  end
  use_device(cfg)
  energy_defaults(cfg, given)
  cfg.cores = ebl.get_num_threads()
  cfg.threads = thread_count(cfg, given)
  ebl.set_num_threads(cfg.threads)
  local d = load_data(cfg)
  local m, sizes = build_model(cfg, d.train.shape, d.train.num_classes)
  print(describe(cfg, d, sizes))
  io.stdout:flush()
  local s = ebl.train(m, d.train, {test = d.test, epochs = cfg.epochs,
    batch = cfg.batch, optim = cfg.optim, lr = cfg.lr, steps = cfg.steps,
    state_lr = cfg.state_lr, tol = cfg.tol, beta = cfg.beta,
    state_optim = cfg.state_optim,
    infer = cfg.backtrack and {backtrack = true} or nil,
    schedule = schedule(cfg), seed = cfg.seed, subset = cfg.subset,
    test_subset = cfg.test_subset, log = cfg.log, save = cfg.save,
    resume = cfg.resume, config = cfg})
  print(ebl.json.encode{test_acc = s.test_acc, train_acc = s.train_acc,
    train_seconds = s.train_seconds, wall_seconds = s.wall_seconds,
    samples_per_second = s.samples_per_second, epochs = s.epochs,
    config = cfg})
end

local ok, err = pcall(main, arg or {...})
if not ok then
  io.stderr:write('train.lua: ', tostring(err), '\n')
  os.exit(1)
end
