-- The trainer end to end on a tiny synthetic dataset: epochs, logs,
-- schedules, checkpoints (round trip, mismatches, a killed write),
-- resuming bit for bit, and stopping on NaN.
local ebl = require 'ebl'

-- n images of 1 x 4 x 4 in 3 classes: class c lights row c + 1 (with
-- noise), so an MLP separates them after a few epochs.
local function synthetic(n, seed)
  ebl.manual_seed(seed)
  local noise = (ebl.rand{n, 16} * 60):totable()
  local images, labels = {}, {}
  for i = 1, n do
    local c = (i * 7 + seed) % 3
    local img = {}
    for p = 1, 16 do
      local row = (p - 1) // 4
      img[p] = math.floor(noise[i][p] + (row == c + 1 and 180 or 0))
    end
    images[i], labels[i] = img, c
  end
  local x = ebl.tensor(images, 'uint8'):reshape{n, 1, 4, 4}
  return ebl.data.dataset(x, ebl.tensor(labels, 'int32'))
end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute('mkdir -p ' .. d))
  return d
end

local function model(seed, hidden, energy)
  ebl.manual_seed(seed)
  return ebl.model(ebl.models.mlp{sizes = {16, hidden or 12, 3}},
    {energy = energy or 'pc'})
end

local SETTINGS = {epochs = 3, batch = 32, steps = 8, state_lr = 0.1,
  lr = 0.01, seed = 3, quiet = true}

local function with(extra)
  local o = {}
  for k, v in pairs(SETTINGS) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- Every element of a equals the one of b.
local function same(a, b)
  return a:eq(b):sum():item() == a:numel()
end

local function same_params(m1, m2)
  local p1, p2 = m1:params(), m2:params()
  for i = 1, #p1 do
    if not same(p1[i], p2[i]) then return false end
  end
  return true
end

local train_ds, test_ds = synthetic(192, 1), synthetic(60, 2)

describe('ebl.train', function()
  it('learns the synthetic set and returns a summary', function()
    local s = ebl.train(model(1), train_ds, with{test = test_ds})
    assert.are.equal(3, s.epochs)
    assert.are.equal(3, #s.history)
    assert.is_true(s.test_acc >= 0.9, ('test acc %.3f'):format(s.test_acc))
    assert.is_true(s.samples_per_second > 0 and s.train_seconds > 0)
    assert.is_true(s.history[3].train_loss < s.history[1].train_loss)
    assert.are.equal(192, s.history[1].samples)
  end)

  it('accepts {train=, test=} and every energy', function()
    for _, energy in ipairs{'pc', 'bipc', 'bp'} do
      local s = ebl.train(model(1, 12, energy),
        {train = train_ds, test = test_ds}, with{epochs = 1})
      assert.is_number(s.test_acc)
    end
  end)

  it('averages the test accuracy by sample count', function()
    local m = model(1)
    local s = ebl.train(m, train_ds, with{epochs = 1, test = test_ds,
      eval_batch = 7})
    local s2 = ebl.train(model(1), train_ds, with{epochs = 1,
      test = test_ds, eval_batch = 60})
    assert.are.equal(s2.test_acc, s.test_acc)
    local right = s.test_acc * 60
    assert.is_true(math.abs(right - math.floor(right + 0.5)) < 1e-9)
  end)

  it('follows the step and cosine schedules', function()
    local s = ebl.train(model(1), train_ds, with{epochs = 4,
      schedule = {kind = 'step', gamma = 0.5, every = 2}})
    local lrs = {}
    for i, r in ipairs(s.history) do lrs[i] = r.lr end
    assert.are.same({0.01, 0.01, 0.005, 0.005}, lrs)
    -- cosine, per batch: 6 batches an epoch, 2 epochs; the last batch
    -- has p = 11/12.
    s = ebl.train(model(1), train_ds, with{epochs = 2, schedule = 'cosine'})
    local want = 0.01 * 0.5 * (1 + math.cos(math.pi * 11 / 12))
    assert.is_true(math.abs(s.history[2].lr - want) < 1e-15)
  end)

  it('writes JSON lines and CSV logs', function()
    local d = tmpdir()
    ebl.train(model(1), train_ds, with{epochs = 2, log = d .. '/l.jsonl'})
    local lines = {}
    for line in io.lines(d .. '/l.jsonl') do
      lines[#lines + 1] = ebl.json.decode(line)
    end
    assert.are.equal(2, #lines)
    assert.are.equal(2, lines[2].epoch)
    assert.is_number(lines[2].train_loss)
    ebl.train(model(1), train_ds, with{epochs = 2, log = d .. '/l.csv'})
    local rows = {}
    for line in io.lines(d .. '/l.csv') do rows[#rows + 1] = line end
    assert.are.equal(3, #rows)
    assert.truthy(rows[1]:find('^epoch,lr,train_loss,'))
    assert.truthy(rows[3]:find('^2,'))
    os.execute('rm -rf ' .. d)
  end)

  it('refuses unknown options and samples that do not fit', function()
    assert.has_error(function()
      ebl.train(model(1), train_ds, {epoch = 2})
    end, "train: unknown option 'epoch' (known: epochs, batch, optim, lr, "
      .. 'momentum, weight_decay, base, steps, state_lr, tol, beta, '
      .. 'state_optim, infer, test, schedule, seed, normalize, augment, '
      .. 'subset, test_subset, eval_batch, log, save, resume, quiet, '
      .. 'progress, max_batches, on_epoch, on_batch, config)')
    ebl.manual_seed(1)
    local m = ebl.model(ebl.models.mlp{sizes = {15, 4, 3}})
    assert.has_error(function() ebl.train(m, train_ds, with{}) end,
      "train: the dataset's samples are 1x4x4, the model's input 'x' "
      .. 'takes 15')
  end)
end)

describe('checkpoints', function()
  it('round trip parameters, optimiser state and the generator', function()
    local d = tmpdir()
    local m = model(1)
    local opt = ebl.optim.adam{lr = 0.01}
    ebl.train(m, train_ds, with{epochs = 1, optim = opt})
    ebl.manual_seed(99)
    ebl.rand{5}
    local seed, offset = ebl._rng_state()
    ebl.checkpoint.save(d .. '/c.safetensors', m, opt, {epoch = 1,
      note = 'x'})
    local m2 = model(2)
    assert.is_false(same_params(m, m2))
    local opt2 = ebl.optim.adam{lr = 0.01}
    ebl.manual_seed(5)
    local state, meta = ebl.checkpoint.load(d .. '/c.safetensors', m2, opt2)
    assert.is_true(same_params(m, m2))
    assert.are.equal(opt.t, opt2.t)
    assert.are.equal(6, opt2.t)
    for i, b in pairs(opt.slots) do
      assert.is_true(same(b.m, opt2.slots[i].m))
      assert.is_true(same(b.v, opt2.slots[i].v))
    end
    local s2, o2 = ebl._rng_state()
    assert.are.same({seed, offset}, {s2, o2})
    assert.are.equal(1, state.epoch)
    assert.are.equal('x', state.note)
    assert.are.equal('1', meta.format)
    assert.are.equal('pc', ebl.json.decode(meta.model).energy)
    assert.are.equal('x->h1', ebl.json.decode(meta.graph).edges[1].src
      .. '->' .. ebl.json.decode(meta.graph).edges[1].dst)
    os.execute('rm -rf ' .. d)
  end)

  it('name every difference with a mismatched model', function()
    local d = tmpdir()
    ebl.checkpoint.save(d .. '/c.safetensors', model(1, 12))
    local ok, err = pcall(ebl.checkpoint.load, d .. '/c.safetensors',
      model(1, 8))
    assert.is_false(ok)
    assert.truthy(err:find("parameter 'x->h1.1.weight' has shape 12x16 in "
      .. 'the file, 8x16 in the model', 1, true), err)
    assert.truthy(err:find("parameter 'h1->y.1.weight' has shape 3x12 in "
      .. 'the file, 3x8 in the model', 1, true), err)
    ebl.manual_seed(1)
    local g = ebl.graph()
    local x = g:node{name = 'x', shape = {16}, role = 'input'}
    local h = g:node{name = 'h', shape = {12}}
    local y = g:node{name = 'y', shape = {3}, role = 'output'}
    g:edge(x, h, ebl.nn.chain(ebl.nn.linear(16, 12), ebl.nn.tanh()))
    g:edge(h, y, ebl.nn.linear(12, 3))
    ok, err = pcall(ebl.checkpoint.load, d .. '/c.safetensors',
      ebl.model(g))
    assert.truthy(err:find("missing from the file: 'x->h.1.weight', "
      .. "'x->h.1.bias', 'h->y.1.weight', 'h->y.1.bias'", 1, true), err)
    assert.truthy(err:find("in the file but not in the model: "
      .. "'h1->y.1.bias', 'h1->y.1.weight', 'x->h1.1.bias', "
      .. "'x->h1.1.weight'", 1, true), err)
    os.execute('rm -rf ' .. d)
  end)

  it('refuse an optimiser of another kind', function()
    local d = tmpdir()
    local m = model(1)
    ebl.checkpoint.save(d .. '/c.safetensors', m, ebl.optim.adam{lr = 1})
    local m2 = model(2)
    local ok, err = pcall(ebl.checkpoint.load, d .. '/c.safetensors', m2,
      ebl.optim.sgd{lr = 1})
    assert.is_false(ok)
    assert.truthy(err:find("the file's optimiser is adam, this run's is "
      .. 'sgd', 1, true), err)
    assert.is_false(same_params(m, m2))   -- nothing was copied
    os.execute('rm -rf ' .. d)
  end)

  it('survive a writer killed midway', function()
    local d = tmpdir()
    local path = d .. '/c.safetensors'
    ebl.save(path, {a = ebl.ones{3}}, {kind = 'old'})
    local script = d .. '/writer.lua'
    local f = assert(io.open(script, 'w'))
    f:write(('local big = ebl.randn{4 * 1024 * 1024}\n'
      .. 'while true do ebl.save(%q, {big = big}, {kind = "new"}) end\n')
      :format(path))
    f:close()
    assert(os.execute(('./ebl %s & pid=$!; sleep 0.6; kill -9 $pid; '
      .. 'wait $pid 2>/dev/null; true'):format(script)))
    local t, meta = ebl.load(path)
    if meta.kind == 'old' then
      assert.is_true(same(t.a, ebl.ones{3}))
    else
      assert.are.equal('new', meta.kind)
      assert.are.equal(4 * 1024 * 1024, t.big:numel())
    end
    os.execute('rm -rf ' .. d)
  end)

  it('are never left half written by a failed save', function()
    local d = tmpdir()
    local path = d .. '/c.safetensors'
    ebl.save(path, {a = ebl.ones{3}})
    local ok, err = pcall(ebl.save, d .. '/missing/c.safetensors',
      {a = ebl.ones{3}})
    assert.is_false(ok)
    assert.truthy(err:find('cannot write ' .. d .. '/missing/c.safetensors '
      .. '(through ' .. d .. '/missing/c.safetensors.tmp.', 1, true), err)
    -- A file cut short (what a plain write interrupted would leave) is
    -- refused by name, so it could never pass for a checkpoint.
    local whole = assert(io.open(path, 'rb')):read('a')
    local cut = d .. '/cut.safetensors'
    local out = assert(io.open(cut, 'wb'))
    out:write(whole:sub(1, #whole - 4))
    out:close()
    ok, err = pcall(ebl.load, cut)
    assert.is_false(ok)
    assert.truthy(err:find(cut .. ": tensor 'a': data_offsets [0, 12] run "
      .. 'past the end of the data (8 bytes)', 1, true), err)
    os.execute('rm -rf ' .. d)
  end)
end)

describe('resuming', function()
  it('continues bit for bit', function()
    local d = tmpdir()
    local path = d .. '/r.safetensors'
    local whole = model(1)
    ebl.train(whole, train_ds, with{epochs = 2, schedule = 'cosine'})
    -- A run of 2 epochs that dies after saving epoch 1 (the schedule
    -- depends on the planned length, so the plan stays 2 epochs).
    local ok = pcall(ebl.train, model(1), train_ds, with{epochs = 2,
      schedule = 'cosine', save = path,
      on_epoch = function() error('crash') end})
    assert.is_false(ok)
    ebl.train(model(1), train_ds, with{epochs = 2, schedule = 'cosine'})
    local resumed = model(7)
    local s = ebl.train(resumed, train_ds, with{epochs = 2,
      schedule = 'cosine', resume = path, save = path})
    assert.are.equal(2, s.epochs)
    assert.are.equal(2, #s.history)
    assert.is_true(same_params(whole, resumed))
    local state = ebl.checkpoint.load(path, model(8))
    assert.are.equal(2, state.epoch)
    os.execute('rm -rf ' .. d)
  end)

  it('continues bit for bit with lalr over sgd with momentum', function()
    local d = tmpdir()
    local path = d .. '/r.safetensors'
    local function opt()
      return ebl.optim.lalr{lr = 0.05, base = 'sgd', momentum = 0.9}
    end
    local whole = model(1)
    ebl.train(whole, train_ds, with{epochs = 2, optim = opt()})
    ebl.train(model(1), train_ds, with{epochs = 1, optim = opt(),
      save = path})
    local resumed = model(7)
    ebl.train(resumed, train_ds, with{epochs = 2, optim = opt(),
      resume = path})
    assert.is_true(same_params(whole, resumed))
    os.execute('rm -rf ' .. d)
  end)
end)

describe('a NaN', function()
  it('stops training naming node and epoch; the checkpoint stays', function()
    local d = tmpdir()
    local path = d .. '/n.safetensors'
    local m = model(1)
    local ok, err = pcall(ebl.train, m, train_ds, with{save = path,
      on_epoch = function(r, mm)
        if r.epoch == 1 then mm:params()[1][1][1] = 0 / 0 end
      end})
    assert.is_false(ok)
    assert.are.equal("train: epoch 2, batch 1: infer: the state of node "
      .. "'h1' became NaN or Inf at step 1; the checkpoint of epoch 1 in "
      .. path .. ' is intact', err)
    local m2 = model(2)
    local state = ebl.checkpoint.load(path, m2)
    assert.are.equal(1, state.epoch)
    for _, p in ipairs(m2:params()) do
      assert.are.equal(0, p:ne(p):sum():item())
    end
    os.execute('rm -rf ' .. d)
  end)

  it('in the loss of bp names the node', function()
    local m = model(1, 12, 'bp')
    local ok, err = pcall(ebl.train, m, train_ds, with{epochs = 2,
      on_epoch = function(_, mm) mm:params()[3][1][1] = 1 / 0 end})
    assert.is_false(ok)
    assert.are.equal("train: epoch 2, batch 1: the energy became NaN or "
      .. "Inf in node 'y'", err)
  end)
end)

describe('checkpoint arguments that once failed inside the library', function()
  -- The error message of f(...), which must fail.
  local function error_of(f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok)
    return tostring(err)
  end

  it('a non-model, non-optimiser or non-table state is named', function()
    local m = ebl.model(ebl.models.mlp{sizes = {3, 2}})
    local cp = ebl.checkpoint
    assert.matches("bad argument #3 to 'save' (optimiser expected, got "
      .. "string)", error_of(cp.save, 'x.safetensors', m, 'adam'), 1, true)
    assert.matches("bad argument #4 to 'save' (table expected, got "
      .. "function)", error_of(cp.save, 'x.safetensors', m, nil, print),
      1, true)
    assert.matches("bad argument #2 to 'load' (model expected, got "
      .. "number)", error_of(cp.load, 'x.safetensors', 5), 1, true)
    assert.matches("bad argument #1 to 'describe' (model expected, got "
      .. "string)", error_of(cp.describe, 'x'), 1, true)
  end)

  it('ebl.load given a model points to checkpoint.load', function()
    local m = ebl.model(ebl.models.mlp{sizes = {3, 2}})
    assert.matches("#2 to 'ebl.load' (load takes a path only; "
      .. 'ebl.checkpoint.load(path, m [, opt]) loads into a model)',
      error_of(ebl.load, 'x.safetensors', m), 1, true)
  end)
end)
