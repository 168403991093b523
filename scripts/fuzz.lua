-- scripts/fuzz.lua: calls every function reachable from the `ebl` table
-- with bad and edge arguments, to find crashes (segfault, abort) and hangs.
--
-- The targets are the functions of `ebl` and its sub-tables, the methods of
-- tensors, graphs, layers, models (and their C cores), optimisers, datasets
-- and loaders (and the loader's C core), read from live instances. Each
-- call draws 0 to 4 arguments (and, for a method, its self) from a fixed
-- pool of values: nil, booleans, extreme numbers, NaN, strings, nested
-- tables, functions, coroutines, tensors of every dtype, empty, 0-dim,
-- non-contiguous and broadcast views, huge and negative shapes, option
-- tables with odd values, files with broken contents. Every call runs
-- under pcall; an error is the right answer, a dead process is not.
--
-- Run (from the repository root, after `make`):
--   ./ebl scripts/fuzz.lua                  every target, each in a child
--   ./ebl scripts/fuzz.lua --part 2/4       the second quarter of them
--   ./ebl scripts/fuzz.lua --seed 7 --calls 500 --match Tensor
--   ./ebl scripts/fuzz.lua --list           the targets
--   ./ebl scripts/fuzz.lua --only ebl.zeros --seed 1 [--call 17] [-v]
-- The driver runs `--only NAME` for each target in a child process under
-- `timeout` and `ulimit -v` (memory cap), in a scratch folder; a child that
-- dies or times out is reported with the last call it printed (each call
-- is printed and flushed before it is made), then resumed after that
-- call. `--call K` replays call K of a batch alone; run by hand, `--only`
-- re-runs itself in a scratch folder too (calls write files named by the
-- pool's strings). Exit status: 1 if any target crashed or hung.
--
-- Not fuzzed, because they end or block the process by design: os.exit
-- and io.read are not in `ebl`; ebl.repl is not exported; ebl.sleep is
-- called with at most 0.05 s; stdin is /dev/null in the children. Calls
-- that run a training loop or inference for as many steps as asked
-- (ebl.train, m:infer) get their counts from the pool, so a huge count
-- legitimately takes long: such a time-out is reported as SLOW for a
-- person to judge, with the call.

local SELF = arg and arg[0] or 'scripts/fuzz.lua'

-- ---- command line ----

-- Parses --key value pairs and flags into a table.
local function parse_args(argv)
  local opts = {seed = 1, calls = 300, limit = 2, timeout = 120,
                mem_mb = 6144}
  local i = 1
  while argv[i] do
    local key = argv[i]:match('^%-%-?(.+)$')
    if not key then error('fuzz: unexpected argument ' .. argv[i]) end
    if key == 'list' or key == 'v' or key == 'keep' then
      opts[key] = true
      i = i + 1
    else
      opts[key] = argv[i + 1]
      i = i + 2
    end
  end
  for _, k in ipairs{'seed', 'calls', 'limit', 'timeout', 'mem_mb',
                     'call', 'from'} do
    if opts[k] then opts[k] = tonumber(opts[k]) end
  end
  return opts
end

local OPTS = parse_args(arg or {})

-- ---- the pool of values ----

-- Files with broken contents, written into the scratch folder once.
local function write_files()
  local function put(name, bytes)
    local f = io.open(name, 'wb')
    if f then f:write(bytes) f:close() end
  end
  put('empty.bin', '')
  put('garbage.bin', string.rep('\255\0\1', 100))
  -- A safetensors header claiming 2^62 bytes, then one claiming a tensor
  -- far past the end of the file.
  put('huge_header.safetensors', string.pack('<i8', 1 << 62) .. '{}')
  local hdr = '{"w":{"dtype":"F32","shape":[1000000,1000000],' ..
    '"data_offsets":[0,4000000000000]}}'
  put('past_end.safetensors', string.pack('<i8', #hdr) .. hdr)
  hdr = '{"w":{"dtype":"F32","shape":[-1,2],"data_offsets":[0,8]}}'
  put('neg_shape.safetensors', string.pack('<i8', #hdr) .. hdr .. '12345678')
  -- IDX files: a 2-dim uint8 one claiming 2^31 x 2^31 elements, and one
  -- with 255 dims.
  put('huge.idx', '\0\0\8\2' .. string.pack('>I4I4', 0x7fffffff,
                                             0x7fffffff) .. 'ab')
  put('dims.idx', '\0\0\8\255' .. string.rep('\0\0\0\1', 255))
  pcall(ebl.save, 'good.safetensors', {w = ebl.randn{2, 3}})
  local f = io.open('good.safetensors', 'rb')
  if f then
    local all = f:read('a')
    f:close()
    put('trunc.safetensors', all:sub(1, #all - 5))
  end
end

-- Shape and option keys seen in the API (docs and bindings).
local OPTION_KEYS = {
  'act', 'augment', 'base', 'batch', 'beta', 'bias', 'channels',
  'check_every', 'classes', 'crop', 'delay', 'device', 'dilation',
  'drop_last', 'dtype', 'energy', 'eps', 'epochs', 'feedback_weight',
  'flip', 'groups', 'hidden', 'kind', 'loss', 'lr', 'momentum', 'name',
  'normalize', 'output_padding', 'padding', 'prefetch', 'role', 'seed',
  'shape', 'shuffle', 'size', 'sizes', 'skip', 'state_lr', 'steps',
  'stride', 'subset', 'time_steps', 'tol', 'trust', 'weight_decay',
  'width', 'in_channels', 'out_channels', 'kernel', 'blocks', 'literal',
  'quiet', 'progress', 'test', 'optim', 'on_batch', 'linewidth',
  'precision', 'edgeitems', 'save', 'resume', 'schedule', 'threshold',
}

local NAN = 0 / 0

-- Small instances that several entries of the pool share the making of.
local make = {}

function make.tensor(shape, dtype)
  return ebl.randn(shape):to(dtype or 'float32')
end

-- A dataset of 10 images 1 x 4 x 4 with 2 classes.
function make.dataset()
  local images = ebl.randint(0, 255, {10, 1, 4, 4}):byte()
  return ebl.data.dataset(images, ebl.randint(0, 2, {10}):int())
end

-- A graph x(3) -> y(2) through a linear layer.
function make.graph()
  local g = ebl.graph()
  local x = g:node{name = 'x', shape = {3}, role = 'input'}
  local y = g:node{name = 'y', shape = {2}, role = 'output'}
  g:edge(x, y, ebl.nn.linear(3, 2), {kind = 'forward'})
  return g
end

function make.model(energy)
  return ebl.model(make.graph(), {energy = energy or 'pc'})
end

-- A model after one inference on a batch of 4, so its states exist.
function make.inferred()
  local m = make.model()
  m:infer(ebl.randn{4, 3}, ebl.tensor{0, 1, 1, 0}:int(), {steps = 2})
  return m
end

-- Each entry: a name printed in the call's text and a maker.
local POOL = {
  {'nil', function() return nil end},
  {'true', function() return true end},
  {'false', function() return false end},
  {'0', function() return 0 end},
  {'1', function() return 1 end},
  {'2', function() return 2 end},
  {'3', function() return 3 end},
  {'-1', function() return -1 end},
  {'-2', function() return -2 end},
  {'0.5', function() return 0.5 end},
  {'1e300', function() return 1e300 end},
  {'-1e300', function() return -1e300 end},
  {'1e12', function() return 1e12 end},
  {'2^31', function() return 1 << 31 end},
  {'2^40', function() return 1 << 40 end},
  {'NaN', function() return NAN end},
  {'inf', function() return math.huge end},
  {'-inf', function() return -math.huge end},
  {'mininteger', function() return math.mininteger end},
  {'maxinteger', function() return math.maxinteger end},
  {"''", function() return '' end},
  {"'xyz'", function() return 'xyz' end},
  {"'float32'", function() return 'float32' end},
  {"'int32'", function() return 'int32' end},
  {"'uint8'", function() return 'uint8' end},
  {"'cpu'", function() return 'cpu' end},
  {"'cuda'", function() return 'cuda' end},
  {"'pc'", function() return 'pc' end},
  {"'x'", function() return 'x' end},
  {"'y'", function() return 'y' end},
  {"'mean'", function() return 'mean' end},
  {"'%s%n'", function() return '%s%n%d' end},
  {"'/'", function() return '/' end},
  {"'/dev/null'", function() return '/dev/null' end},
  {"'/nonexistent/x'", function() return '/nonexistent/x' end},
  {"'empty.bin'", function() return 'empty.bin' end},
  {"'garbage.bin'", function() return 'garbage.bin' end},
  {"'huge_header.safetensors'",
   function() return 'huge_header.safetensors' end},
  {"'past_end.safetensors'", function() return 'past_end.safetensors' end},
  {"'neg_shape.safetensors'", function() return 'neg_shape.safetensors' end},
  {"'trunc.safetensors'", function() return 'trunc.safetensors' end},
  {"'good.safetensors'", function() return 'good.safetensors' end},
  {"'huge.idx'", function() return 'huge.idx' end},
  {"'dims.idx'", function() return 'dims.idx' end},
  {'long string', function() return string.rep('a', 100000) end},
  {'{}', function() return {} end},
  {'{1,{2}}', function() return {1, {2}} end},
  {'{{{{}}}}', function() return {{{{}}}} end},
  {'{2,3}', function() return {2, 3} end},
  {'{3}', function() return {3} end},
  {'{1e12}', function() return {1e12} end},
  {'{1e6,1e6}', function() return {1e6, 1e6} end},
  {'{-1}', function() return {-1} end},
  {'{-1,-1}', function() return {-1, -1} end},
  {'{0}', function() return {0} end},
  {'{2^31,2^31}', function() return {1 << 31, 1 << 31} end},
  {'{1,1,1,1,1,1,1,1,1}', function() return {1, 1, 1, 1, 1, 1, 1, 1, 1} end},
  {'{NaN}', function() return {NAN} end},
  {'{inf}', function() return {math.huge} end},
  {"{'a'}", function() return {'a'} end},
  {'{1,nil,3}', function() return {1, nil, 3} end},
  {'{{1,2},{3}}', function() return {{1, 2}, {3}} end},
  {'{{1,2},{3,4}}', function() return {{1, 2}, {3, 4}} end},
  {'self-table', function() local t = {} t[1] = t t.x = t return t end},
  {'table with __index error', function()
    return setmetatable({}, {__index = function() error('boom') end,
                             __len = function() return 1 << 40 end})
  end},
  {'function', function() return function() return 1 end end},
  {'erroring function', function() return function() error('cb') end end},
  {'coroutine', function() return coroutine.create(function() end) end},
  {'io.stdout', function() return io.stdout end},
  {'T f32 2x3', function() return make.tensor{2, 3} end},
  {'T f64 2x3', function() return make.tensor({2, 3}, 'float64') end},
  {'T i32 2x3', function() return make.tensor({2, 3}, 'int32') end},
  {'T u8 2x3', function() return make.tensor({2, 3}, 'uint8') end},
  {'T f32 3x2', function() return make.tensor{3, 2} end},
  {'T f32 4x3', function() return make.tensor{4, 3} end},
  {'T f32 3', function() return make.tensor{3} end},
  {'T i32 labels 4', function() return ebl.tensor{0, 1, 1, 0}:int() end},
  {'T i32 labels bad', function() return ebl.tensor{-5, 99, 1, 2^30}:int() end},
  {'T f32 0', function() return ebl.zeros{0} end},
  {'T f32 0x3', function() return ebl.zeros{0, 3} end},
  {'T i32 0', function() return ebl.zeros({0}, {dtype = 'int32'}) end},
  {'T f32 scalar', function() return ebl.tensor(2.5) end},
  {'T u8 scalar', function() return ebl.tensor(7):byte() end},
  {'T f32 3x2 transposed',
   function() return make.tensor{2, 3}:transpose(1, 2) end},
  {'T f32 4x3 expanded', function() return make.tensor{1, 3}:expand{4, 3} end},
  {'T f32 narrow', function() return make.tensor{4, 6}:narrow(2, 2, 3) end},
  {'T f32 1x1x4x4', function() return make.tensor{1, 1, 4, 4} end},
  {'T f32 2x1x5x5', function() return make.tensor{2, 1, 5, 5} end},
  {'T f32 2x3x3x3', function() return make.tensor{2, 3, 3, 3} end},
  {'T f32 4x1x4x4 perm', function()
    return make.tensor{4, 4, 1, 4}:permute(1, 3, 2, 4) end},
  {'T u8 4x1x4x4', function() return make.tensor({4, 1, 4, 4}, 'uint8') end},
  {'T f32 NaN', function() return ebl.full({2, 3}, NAN) end},
  {'T f32 inf', function() return ebl.full({2, 3}, math.huge) end},
  {'T i32 min', function()
    return ebl.full({2, 3}, -2147483648, {dtype = 'int32'}) end},
  {'T f32 64x64', function() return make.tensor{64, 64} end},
  {'graph', function() return make.graph() end},
  {'empty graph', function() return ebl.graph() end},
  {'node', function() return make.graph().nodes[1] end},
  {'layer linear', function() return ebl.nn.linear(3, 2) end},
  {'layer conv', function() return ebl.nn.conv2d(1, 2, 3) end},
  {'layer relu', function() return ebl.nn.relu() end},
  {'model', function() return make.model() end},
  {'model inferred', function() return make.inferred() end},
  {'optim sgd', function() return ebl.optim.sgd{lr = 0.1} end},
  {'optim lalr', function() return ebl.optim.lalr{lr = 0.1} end},
  {'dataset', function() return make.dataset() end},
  {'loader',
   function() return ebl.data.loader(make.dataset(), {batch = 4}) end},
  {'params', function() return make.model():params() end},
  {'opts bad', function() return 'OPTS' end},
  {'opts bad', function() return 'OPTS' end},
  {'opts bad', function() return 'OPTS' end},
}

-- The tensors of the pool, for the self of tensor methods.
local TENSORS = {}
for _, entry in ipairs(POOL) do
  if entry[1]:match('^T ') then TENSORS[#TENSORS + 1] = entry end
end

-- Values an option can take in an option table.
local OPTION_VALUES = {
  0, 1, 2, -1, -1e300, 1e300, NAN, math.huge, math.mininteger,
  math.maxinteger, 1 << 40, 0.5, '', 'xyz', 'adam', 'relu', 'mse', 'ce',
  'pc', 'bipc', 'ep', 'bp', 'float64', 'int32', true, false, {}, {0},
  {-1, -1}, {1e12}, {2, 3}, {1, 2, 3}, 'FUNC',
}

local function random_item(list) return list[math.random(#list)] end

-- An option table of 1 to 3 keys with odd values; its text for printing.
local function option_table()
  local t, text = {}, {}
  for _ = 1, math.random(3) do
    local k, v = random_item(OPTION_KEYS), random_item(OPTION_VALUES)
    if v == 'FUNC' then v = function() error('option callback') end end
    t[k] = v
    local shown = type(v) == 'table' and '{..}' or
      type(v) == 'function' and 'function' or tostring(v)
    text[#text + 1] = k .. '=' .. shown
  end
  return t, '{' .. table.concat(text, ', ') .. '}'
end

-- Draws one value: returns the value and its text.
local function draw_value()
  local entry = random_item(POOL)
  local ok, v = pcall(entry[2])
  if not ok then return nil, entry[1] .. '(failed: ' .. tostring(v) .. ')' end
  if v == 'OPTS' then return option_table() end
  return v, entry[1]
end

-- ---- templates: valid calls to mutate ----

-- A random tensor of the given shape, float32.
local function T(...) return ebl.randn{...} end

-- Valid arguments of the main functions, so that a mutated call gets past
-- the first check and reaches the deeper ones. Each maker returns fresh
-- values.
local TEMPLATES = {
  ['ebl.zeros'] = function() return {{2, 3}, {dtype = 'float32'}} end,
  ['ebl.full'] = function() return {{2, 3}, 1.5, {dtype = 'float64'}} end,
  ['ebl.tensor'] = function() return {{{1, 2}, {3, 4}}, {dtype = 'int32'}} end,
  ['ebl.arange'] = function() return {0, 10, 2} end,
  ['ebl.linspace'] = function() return {0, 1, 5} end,
  ['ebl.eye'] = function() return {3, 4} end,
  ['ebl.randint'] = function() return {0, 10, {3}} end,
  ['ebl.randperm'] = function() return {5} end,
  ['ebl.cat'] = function() return {{T(2, 3), T(2, 4)}, 2} end,
  ['ebl.stack'] = function() return {{T(2, 3), T(2, 3)}, 1} end,
  ['ebl.matmul'] = function() return {T(2, 3), T(3, 4)} end,
  ['ebl.where'] = function() return {T(2, 3):gt(0), T(2, 3), 0} end,
  ['ebl.softmax'] = function() return {T(2, 3), 2} end,
  ['ebl.log_softmax'] = function() return {T(2, 3), 2} end,
  ['ebl.cross_entropy'] = function()
    return {T(4, 3), ebl.tensor{0, 1, 2, 1}:int()} end,
  ['ebl.cross_entropy_grad'] = function()
    return {T(4, 3), ebl.tensor{0, 1, 2, 1}:int()} end,
  ['ebl.mse_loss'] = function() return {T(4, 3), T(4, 3)} end,
  ['ebl.mse_loss_grad'] = function() return {T(4, 3), T(4, 3)} end,
  ['ebl.conv2d'] = function()
    return {T(2, 2, 5, 5), T(4, 2, 3, 3), T(4), {stride = 1, padding = 1}}
  end,
  ['ebl.conv2d_input_vjp'] = function()
    return {T(2, 4, 3, 3), T(4, 2, 3, 3), {2, 2, 5, 5}, {stride = 1}} end,
  ['ebl.conv2d_weight_vjp'] = function()
    return {T(2, 2, 5, 5), T(2, 4, 3, 3), {4, 2, 3, 3}, {stride = 1}} end,
  ['ebl.conv2d_bias_vjp'] = function() return {T(2, 4, 3, 3)} end,
  ['ebl.conv_transpose2d'] = function()
    return {T(2, 2, 3, 3), T(2, 4, 3, 3), T(4),
            {stride = 2, padding = 1, output_padding = 1}} end,
  ['ebl.conv_transpose2d_input_vjp'] = function()
    return {T(2, 4, 5, 5), T(2, 4, 3, 3), {2, 2, 3, 3}, {stride = 1}} end,
  ['ebl.conv_transpose2d_weight_vjp'] = function()
    return {T(2, 2, 3, 3), T(2, 4, 5, 5), {2, 4, 3, 3}, {stride = 1}} end,
  ['ebl.max_pool2d'] = function() return {T(2, 2, 4, 4), 2, 2, 0} end,
  ['ebl.max_pool2d_vjp'] = function()
    local x = T(2, 2, 4, 4)
    local y, idx = ebl.max_pool2d(x, 2)
    return {y, idx, x, 2, 2, 0}
  end,
  ['ebl.avg_pool2d'] = function() return {T(2, 2, 4, 4), 2, 2, 0} end,
  ['ebl.avg_pool2d_vjp'] = function()
    return {T(2, 2, 2, 2), {2, 2, 4, 4}, 2, 2, 0} end,
  ['ebl.save'] = function() return {'out.safetensors', {w = T(2)}} end,
  ['ebl.load'] = function() return {'good.safetensors'} end,
  ['ebl.model'] = function() return {make.graph(), {energy = 'pc'}} end,
  ['ebl.train'] = function()
    return {ebl.model(ebl.models.mlp{sizes = {16, 4, 2}}),
            make.dataset(), {epochs = 1, batch = 4, quiet = true}} end,
  ['ebl.checkpoint.save'] = function()
    return {'ck.safetensors', make.model(), ebl.optim.adam{lr = 0.1}} end,
  ['ebl.checkpoint.load'] = function()
    local m = make.model()
    ebl.checkpoint.save('ck2.safetensors', m)
    return {'ck2.safetensors', m}
  end,
  ['ebl.data.dataset'] = function()
    return {ebl.randint(0, 255, {10, 1, 4, 4}):byte(),
            ebl.randint(0, 2, {10}):int()} end,
  ['ebl.data.loader'] = function()
    return {make.dataset(), {batch = 4, shuffle = true}} end,
  ['ebl.data._stats'] = function()
    return {ebl.randint(0, 255, {10, 1, 4, 4}):byte(), 5} end,
  ['ebl.models.mlp'] = function() return {{sizes = {3, 4, 2}}} end,
  ['ebl.models.cnn'] = function()
    return {{size = 8, blocks = {2}, width = 1, hidden = 4}} end,
  ['ebl.models.hierarchical'] = function() return {{size = 8, width = 0.1}} end,
  ['ebl.models.skiprec_simple'] = function()
    return {{size = 8, width = 0.1}} end,
  ['ebl.models.skiprec_complex'] = function()
    return {{size = 8, width = 0.1}} end,
  ['ebl.nn.linear'] = function() return {3, 2, {bias = true}} end,
  ['ebl.nn.conv2d'] = function() return {2, 4, 3, {stride = 1}} end,
  ['ebl.nn.conv_transpose2d'] = function() return {2, 4, 3, {stride = 2}} end,
  ['ebl.nn.max_pool2d'] = function() return {2, 2, 0} end,
  ['ebl.nn.avg_pool2d'] = function() return {2, 2, 0} end,
  ['ebl._chain_shape'] = function()
    return {{{kind = 'linear', weight = 1, bias = 2}}, {T(2, 3), T(2)},
            {3}, 'edge'} end,
  ['ebl.json.decode'] = function() return {'{"a":[1,2,{"b":null}]}'} end,
  ['ebl.json.encode'] = function() return {{a = {1, 2}, b = 'x'}} end,
  ['ebl.print_options'] = function() return {{precision = 2}} end,
  ['Model:infer'] = function()
    return {make.model(), T(4, 3), ebl.tensor{0, 1, 1, 0}:int(),
            {steps = 2}} end,
  ['Model:learn'] = function()
    return {make.inferred(), ebl.optim.sgd{lr = 0.1}} end,
  ['Model:predict'] = function() return {make.model(), T(4, 3)} end,
  ['Model:state'] = function() return {make.inferred(), 'y', 1} end,
  ['Model:error'] = function() return {make.inferred(), 'y', 1} end,
  ['Model:state_grad'] = function() return {make.inferred(), 'y', 1} end,
  ['Model:evaluate'] = function()
    return {ebl.model(ebl.models.mlp{sizes = {16, 4, 2}}),
            ebl.data.loader(make.dataset(), {batch = 4})} end,
  ['Graph:node'] = function()
    return {make.graph(), {name = 'z', shape = {3}}} end,
  ['Graph:edge'] = function()
    return {make.graph(), 'y', 'x', ebl.nn.linear(2, 3)} end,
  ['Optimizer:step'] = function()
    local m = make.inferred()
    return {ebl.optim.adam{lr = 0.1}, m:params(), m:grads()} end,
}

-- Replaces one or two arguments of a template with pool values, or sets
-- one odd option in a table argument.
local function mutate(args, texts, n, draw)
  for _ = 1, math.random(2) do
    local i = math.random(n + 1)
    if type(args[i]) == 'table' and getmetatable(args[i]) == nil
        and math.random() < 0.5 then
      local key = math.random() < 0.7 and OPTION_KEYS[math.random(
        #OPTION_KEYS)] or next(args[i]) or 1
      local v = OPTION_VALUES[math.random(#OPTION_VALUES)]
      if v == 'FUNC' then v = function() error('option callback') end end
      args[i][key] = v
      texts[i] = texts[i] .. '+{' .. tostring(key) .. '=' ..
        (type(v) == 'table' and '{..}' or tostring(v)) .. '}'
    else
      args[i], texts[i] = draw()
    end
    n = math.max(n, i)
  end
  return n
end

-- ---- the targets ----

-- Instances whose methods are fuzzed: a maker per class, called afresh.
local CLASSES = {
  Tensor = function() return draw_value() end,
  Graph = make.graph,
  Layer = function() return ebl.nn.linear(3, 2) end,
  Model = make.inferred,
  ModelCore = function() return make.inferred().core end,
  Optimizer = function() return ebl.optim.adam{lr = 0.01} end,
  Dataset = make.dataset,
  Loader = function()
    return ebl.data.loader(make.dataset(), {batch = 4})
  end,
  LoaderCore = function()
    return ebl.data.loader(make.dataset(), {batch = 4}).core
  end,
}

-- The methods of an instance: its metatable's metamethods, and the
-- functions of its __index table (or of __methods, tensors' table).
local function methods_of(obj)
  local mt, out = getmetatable(obj), {}
  if type(mt) ~= 'table' then return out end
  for k, v in pairs(mt) do out[k] = v end
  local index = rawget(mt, '__index')
  if type(index) ~= 'table' then index = rawget(mt, '__methods') end
  for k, v in pairs(type(index) == 'table' and index or {}) do
    out[k] = v
  end
  return out
end

-- Tables of `ebl` whose functions are not fuzzed as free functions.
local SKIP_TABLES = {_help_texts = true}

-- Adds the functions of table t (and its sub-tables) under prefix.
local function walk(t, prefix, out, seen)
  if seen[t] then return end
  seen[t] = true
  for k, v in pairs(t) do
    local name = prefix .. tostring(k)
    if type(v) == 'function' then
      out[#out + 1] = {name = name, fn = v}
    elseif type(v) == 'table' and type(k) == 'string'
        and not SKIP_TABLES[k] then
      walk(v, name .. '.', out, seen)
    end
  end
end

-- Adds Class:method targets read from a live instance of each class.
local function add_methods(out)
  for class, maker in pairs(CLASSES) do
    local obj = class == 'Tensor' and ebl.zeros{1} or maker()
    for k, v in pairs(methods_of(obj)) do
      if type(v) == 'function' and type(k) == 'string'
          and k ~= '__gc' then
        out[#out + 1] = {name = class .. ':' .. k, fn = v, class = class}
      end
    end
  end
end

-- Every target, sorted by name so that slices are stable.
local function targets()
  local out = {}
  walk(ebl, 'ebl.', out, {})
  add_methods(out)
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

-- ---- one batch (the child) ----

-- Keeps ebl.sleep's argument short: sleeping as long as asked is right.
local function capped_sleep(args, n)
  if n >= 1 and type(args[1]) == 'number' and args[1] > 0.05 then
    args[1] = 0.05
  end
end

-- A call from the target's template with one or two changes, or nil.
local function template_call(target)
  local maker = TEMPLATES[target.name]
  if not maker or math.random() < 0.4 then return nil end
  local ok, args = pcall(maker)
  if not ok then return nil end
  local texts, n = {}, #args
  for i = 1, n do texts[i] = 'valid' end
  n = mutate(args, texts, n, draw_value)
  return args, texts, n
end

-- Draws the self and arguments of one call of a target.
local function draw_call(target)
  local targs, ttexts, tn = template_call(target)
  if targs then return targs, ttexts, tn end
  local args, texts, n = {}, {}, 0
  if target.class then
    n = 1
    if math.random() < 0.85 then
      local ok, obj = pcall(CLASSES[target.class])
      args[1], texts[1] = ok and obj or nil, target.class
      if target.class == 'Tensor' then
        local entry = random_item(TENSORS)
        args[1], texts[1] = entry[2](), entry[1]
      end
    else
      args[1], texts[1] = draw_value()
    end
  end
  local extra = math.random(0, 4)
  for i = n + 1, n + extra do
    args[i], texts[i] = draw_value()
  end
  return args, texts, n + extra
end

-- The text of a call, for the log.
local function call_text(target, texts, n)
  return target.name .. '(' .. table.concat(texts, ', ', 1, n) .. ')'
end

-- Turns a Lua-level runaway into an error after `limit` seconds.
local function set_deadline(limit)
  local deadline = os.clock() + limit
  debug.sethook(function()
    if os.clock() > deadline then
      debug.sethook()
      error('fuzz: call over the time limit', 2)
    end
  end, '', 100000)
end

-- Runs the calls of one target; prints each before making it.
local function run_batch(target)
  math.randomseed(OPTS.seed, #target.name)
  local first = OPTS.call or OPTS.from or 1
  local last = OPTS.call or OPTS.calls
  local slow = 0
  for i = 1, last do
    local args, texts, n = draw_call(target)
    if target.name == 'ebl.sleep' then capped_sleep(args, n) end
    if i >= first then
      io.stdout:write('CALL ', i, ' ', call_text(target, texts, n), '\n')
      io.stdout:flush()
      local start = os.clock()
      set_deadline(OPTS.limit * 5)
      local ok, err = pcall(target.fn, table.unpack(args, 1, n))
      debug.sethook()
      local took = os.clock() - start
      if took > OPTS.limit then
        slow = slow + 1
        print(string.format('SLOW %d %.1fs %s', i, took,
                            call_text(target, texts, n)))
      end
      if OPTS.v then print(ok and 'ok' or 'error', tostring(err)) end
    end
    if i % 20 == 0 then collectgarbage() end
  end
  print('DONE ' .. target.name .. ' slow ' .. slow)
  io.stdout:flush()
end

-- ---- the driver ----

-- Reads the last CALL line and any SLOW lines of a child's log.
local function read_log(path)
  local last, slow, done = nil, {}, false
  for line in io.lines(path) do
    if line:match('^CALL ') then last = line end
    if line:match('^SLOW ') then slow[#slow + 1] = line end
    if line:match('^DONE ') then done = true end
  end
  return last, slow, done
end

-- Runs one target's batch from call `from` in a child; returns how it
-- ended ('ok', 'crash' or 'hang'), its status and the child's log.
local function run_child(ebl_path, script, dir, name, from)
  local log = dir .. '/log.txt'
  local cmd = string.format(
    "cd '%s' && ulimit -v %d && OMP_NUM_THREADS=1 timeout -k 5 %d " ..
    "'%s' '%s' --only '%s' --seed %d --calls %d --limit %g --from %d " ..
    "--scratch 1 " ..
    "> log.txt 2>&1 < /dev/null", dir, OPTS.mem_mb * 1024, OPTS.timeout,
    ebl_path, script, name, OPTS.seed, OPTS.calls, OPTS.limit, from)
  local _, _, code = os.execute(cmd)
  local last, slow, done = read_log(log)
  local how = (code == 0 and done) and 'ok' or
              (code == 124 or code == 137) and 'hang' or
              (code == 126 or code == 127) and 'error' or 'crash'
  return how, code, last, slow, log
end

-- The absolute path of a file named relative to the current folder.
local function absolute(path)
  if path:sub(1, 1) == '/' then return path end
  local pwd = os.getenv('PWD') or io.popen('pwd'):read('l')
  return pwd .. '/' .. path
end

-- Prints the tail of a child's log (the error or the signal).
local function show_tail(log)
  local lines = {}
  for line in io.lines(log) do
    lines[#lines + 1] = line
    if #lines > 4 then table.remove(lines, 1) end
  end
  for _, line in ipairs(lines) do print('    | ' .. line) end
end

-- Runs every target of the slice in children, resuming after a crash.
local function drive()
  local all = targets()
  local part, parts = 1, 1
  if OPTS.part then
    part, parts = OPTS.part:match('^(%d+)/(%d+)$')
    part, parts = tonumber(part), tonumber(parts)
  end
  local dir = io.popen('mktemp -d /tmp/ebl_fuzz.XXXXXX'):read('l')
  -- A copy of the binary, so that a rebuild during the run changes
  -- nothing under the children.
  local ebl_path, script = dir .. '/ebl', absolute(SELF)
  os.execute(string.format("cp '%s' '%s'", absolute('ebl'), ebl_path))
  local found = 0
  for i, target in ipairs(all) do
    local pick = (i - 1) % parts == part - 1 and
      (not OPTS.match or target.name:find(OPTS.match, 1, true))
    local from, tries = 1, 0
    while pick and tries < 5 do
      tries = tries + 1
      local how, code, last, slow = run_child(ebl_path, script, dir,
                                              target.name, from)
      for _, line in ipairs(slow) do print('  ' .. line) end
      if how == 'ok' then
        print(string.format('ok    %s', target.name))
        break
      end
      if how == 'error' then
        print('ERROR ' .. target.name .. ': the child could not start')
        show_tail(dir .. '/log.txt')
        break
      end
      found = found + 1
      print(string.format('%-5s %s (status %s) at: %s', how:upper(),
                          target.name, tostring(code), tostring(last)))
      show_tail(dir .. '/log.txt')
      local k = last and tonumber(last:match('^CALL (%d+)'))
      if not k then break end
      from = k + 1
      pick = from <= OPTS.calls
    end
    io.stdout:flush()
  end
  if not OPTS.keep then os.execute("rm -rf '" .. dir .. "'") end
  print(string.format('%d crashes or hangs', found))
  return found == 0
end

-- ---- main ----

if OPTS.list then
  for _, t in ipairs(targets()) do print(t.name) end
elseif OPTS.only and not OPTS.scratch then
  -- Run by hand: again, inside a scratch folder, since calls write files
  -- named by the pool's strings into the current folder.
  local dir = io.popen('mktemp -d /tmp/ebl_fuzz.XXXXXX'):read('l')
  local argv = {}
  for i = 1, #arg do argv[i] = "'" .. arg[i] .. "'" end
  local ok = os.execute(string.format("cd '%s' && '%s' '%s' %s --scratch 1",
    dir, absolute(arg[-1] or 'ebl'), absolute(SELF), table.concat(argv,
    ' ')))
  os.execute("rm -rf '" .. dir .. "'")
  if not ok then os.exit(1) end
elseif OPTS.only then
  write_files()
  local chosen
  for _, t in ipairs(targets()) do
    if t.name == OPTS.only then chosen = t end
  end
  if not chosen then error('fuzz: no target named ' .. OPTS.only) end
  run_batch(chosen)
else
  if not drive() then os.exit(1) end
end
