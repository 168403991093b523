-- `make bench`, the training part: samples per second and test accuracy
-- after one epoch of Fashion-MNIST, for the main job's configuration
-- (scripts/train.lua's defaults, one epoch) and for the MLP
-- 784-256-256-10 (tanh, 20 inference steps, state lr 0.1, Adam 1e-3,
-- batch 128, no schedule) with pc, bipc and bp. Each runs the runner in
-- its own process; the results, with the machine described, go to
-- bench/results/train.json.
--
--   ./ebl scripts/bench_train.lua [--subset N] [--threads N]
local ebl = require 'ebl'

local MLP = '--energy %s --model mlp --hidden 256,256 --act tanh '
  .. '--steps 20 --state-lr 0.1 --optim adam --lr 1e-3 --batch 128 '
  .. '--schedule none --epochs 1'

local RUNS = {
  {name = 'main job, 1 epoch', flags = '--epochs 1'},
  {name = 'pc mlp', flags = MLP:format('pc')},
  {name = 'bipc mlp', flags = MLP:format('bipc')},
  {name = 'bp mlp', flags = MLP:format('bp')},
}

-- Extra flags passed on to every run (--subset, --threads).
local function passed_flags(args)
  local extra = {}
  for i = 1, #args do extra[#extra + 1] = args[i] end
  return table.concat(extra, ' ')
end

-- The CPU model and core count from /proc/cpuinfo.
local function machine()
  local model, cores = 'unknown', 0
  local f = io.open('/proc/cpuinfo', 'r')
  if f then
    for line in f:lines() do
      local m = line:match('^model name%s*:%s*(.-)%s*$')
      if m then
        model = m
        cores = cores + 1
      end
    end
    f:close()
  end
  return {cpu = model, cores = cores, threads = ebl.get_num_threads()}
end

-- Runs the runner with flags; returns its JSON summary.
local function run(flags)
  local host = arg and arg[-1] or './ebl'
  local p = assert(io.popen(('%s scripts/train.lua %s 2>&1'):format(host,
    flags)))
  local lines = {}
  for line in p:lines() do lines[#lines + 1] = line end
  local ok = p:close()
  local last = lines[#lines] or ''
  if not ok or not last:find('^{') then
    error('bench_train: the run failed:\n' .. table.concat(lines, '\n'), 0)
  end
  return ebl.json.decode(last)
end

local function main(args)
  local extra = passed_flags(args)
  local results = {}
  print(('%-20s %14s %9s %9s'):format('training, 1 epoch', 'samples/s',
    'test acc', 'seconds'))
  for _, r in ipairs(RUNS) do
    local s = run(r.flags .. ' ' .. extra)
    results[#results + 1] = {name = r.name, energy = s.config.energy,
      samples_per_second = s.samples_per_second, test_acc = s.test_acc,
      train_seconds = s.train_seconds, config = s.config}
    print(('%-20s %14.0f %9.4f %9.1f'):format(r.name, s.samples_per_second,
      s.test_acc, s.train_seconds))
    io.stdout:flush()
  end
  local out = {machine = machine(), date = os.date('!%Y-%m-%dT%H:%M:%SZ'),
    results = results}
  os.execute('mkdir -p bench/results')
  local f = assert(io.open('bench/results/train.json', 'w'))
  f:write(ebl.json.encode(out), '\n')
  f:close()
  print('written: bench/results/train.json')
end

local ok, err = pcall(main, arg or {})
if not ok then
  io.stderr:write(tostring(err), '\n')
  os.exit(1)
end
