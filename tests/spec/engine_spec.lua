-- The energy engine against independent references: central finite
-- differences in float64 of m:energy() against m:state_grad() and
-- m:grads(), for every energy, on graphs with linear, conv, pooling,
-- skip, recurrent and time-unrolled edges.
local ebl = require 'ebl'
local nn = ebl.nn
local F64 = {dtype = 'float64'}

local EPS = 1e-5

-- Central difference of f at element (i, j...) of the live tensor t.
local function central(t, idx, f)
  local flat = t:reshape(-1)
  local old = flat[idx]
  flat[idx] = old + EPS
  local up = f()
  flat[idx] = old - EPS
  local down = f()
  flat[idx] = old
  return (up - down) / (2 * EPS)
end

-- Largest relative error between the numeric and analytic gradients of
-- every element of t (at most `limit` elements, spread out).
local function worst_error(t, analytic, f, scale, limit)
  local n = t:numel()
  local step = math.max(1, n // (limit or 40))
  local a = analytic:reshape(-1)
  local worst, biggest = 0, 0
  for idx = 1, n, step do
    local num = central(t, idx, f)
    local ana = a[idx] * scale
    biggest = math.max(biggest, math.abs(ana))
    worst = math.max(worst, math.abs(num - ana))
  end
  return worst / math.max(biggest, 1e-8), biggest
end

local function batch(n, shape, seed)
  ebl.manual_seed(seed or 1)
  local full = {n}
  for _, s in ipairs(shape) do full[#full + 1] = s end
  return ebl.randn(full, F64)
end

local function labels(n, k)
  local t = {}
  for i = 1, n do t[i] = (i * 7) % k end
  return ebl.tensor(t, 'int32')
end

-- Checks dF/dv of every free node and dF/dtheta of every parameter.
local function check_all(m, nodes, opts)
  local n = m.core:batch()
  local f = function() return m:energy() end
  for _, name in ipairs(nodes) do
    for t = 1, m.config.time_steps do
      local g = m:state_grad(name, t):clone()
      local err, size = worst_error(m:state(name, t), g, f, 1 / n)
      assert.is_true(size > 1e-6, 'no gradient at ' .. name)
      assert.is_true(err < 1e-6, ('dF/dv of %s at t=%d: relative error '
        .. '%.3g'):format(name, t, err))
    end
  end
  if opts and opts.skip_params then return end
  local grads = {}
  for i, g in ipairs(m:grads()) do grads[i] = g:clone() end
  for i, p in ipairs(m:params()) do
    local err = worst_error(p, grads[i], f, 1)
    assert.is_true(err < 1e-6, ('dF/dtheta of %s: relative error %.3g')
      :format(m:param_names()[i], err))
  end
end

local function mlp(energy, extra)
  ebl.manual_seed(3)
  local g = ebl.graph()
  local x = g:node{name = 'x', shape = {3}, role = 'input'}
  local h = g:node{name = 'h', shape = {4}}
  local y = g:node{name = 'y', shape = {2}, role = 'output'}
  g:edge(x, h, nn.chain(nn.linear(3, 4, F64), nn.tanh()))
  g:edge(h, y, nn.linear(4, 2, F64))
  local opts = {energy = energy}
  for k, v in pairs(extra or {}) do opts[k] = v end
  return ebl.model(g, opts)
end

describe('the engine on an MLP', function()
  for _, energy in ipairs{'pc', 'bipc', 'bipc_sq'} do
    it(energy .. ': finite differences of F (ce loss)', function()
      local m = mlp(energy)
      m:infer(batch(5, {3}), labels(5, 2), {steps = 3, state_lr = 0.1})
      check_all(m, {'h', 'y'})
    end)

    it(energy .. ': finite differences of F (mse, literal feedback)',
      function()
        local m = mlp(energy, {loss = 'mse', feedback_weight = 0.7,
          feedback_from_output = true, cb_weight = 0.5})
        m:infer(batch(4, {3}), batch(4, {2}, 9), {steps = 3, state_lr = 0.1})
        check_all(m, {'h', 'y'})
      end)
  end

  it('pc: the states start from a forward sweep with zero errors',
    function()
      local m = mlp('pc')
      m:infer(batch(3, {3}), labels(3, 2), {steps = 0})
      assert.are.equal(0, m:error('h'):norm():item())
      assert.are.equal(0, m:error('y'):norm():item())
    end)
end)

-- x (1, 6, 6) -> h (2, 6, 6) -> p (2, 3, 3) -> y (3): conv, pooling and
-- reshapes in the chains.
local function cnn(energy, pool, extra)
  ebl.manual_seed(5)
  local g = ebl.graph()
  local x = g:node{name = 'x', shape = {1, 6, 6}, role = 'input'}
  local h = g:node{name = 'h', shape = {2, 6, 6}}
  local p = g:node{name = 'p', shape = {2, 3, 3}, activation = 'tanh'}
  local y = g:node{name = 'y', shape = {3}, role = 'output'}
  g:edge(x, h, nn.chain(nn.conv2d(1, 2, 3, {padding = 1, dtype = 'float64'}),
    nn.tanh()))
  g:edge(h, p, nn.chain(nn[pool](2), nn.conv2d(2, 2, {3, 1},
    {padding = {1, 0}, dtype = 'float64'})))
  g:edge(p, y, nn.chain(nn.flatten(), nn.linear(18, 3, F64)))
  local opts = {energy = energy}
  for k, v in pairs(extra or {}) do opts[k] = v end
  return ebl.model(g, opts)
end

describe('the engine on convolutions and pooling', function()
  for _, energy in ipairs{'pc', 'bipc', 'bipc_sq'} do
    for _, pool in ipairs{'avg_pool2d', 'max_pool2d'} do
      it(('%s with %s: finite differences of F'):format(energy, pool),
        function()
          local m = cnn(energy, pool, {feedback_weight = 0.5,
            feedback_from_output = true, cb_weight = 0.3})
          m:infer(batch(3, {1, 6, 6}), labels(3, 3),
            {steps = 20, state_lr = 0.2})
          check_all(m, {'h', 'p', 'y'})
        end)
    end
  end
end)

-- Skip, recurrent and time-unrolled edges: x -> h1 -> h2 -> y, a skip
-- x -> h2, h2 recurrent on itself, over T = 3 steps.
local function recurrent(energy, extra)
  ebl.manual_seed(7)
  local g = ebl.graph()
  local x = g:node{name = 'x', shape = {3}, role = 'input'}
  local h1 = g:node{name = 'h1', shape = {4}}
  local h2 = g:node{name = 'h2', shape = {4}, activation = 'tanh'}
  local y = g:node{name = 'y', shape = {2}, role = 'output'}
  g:edge(x, h1, nn.chain(nn.linear(3, 4, F64), nn.tanh()))
  g:edge(h1, h2, nn.linear(4, 4, F64))
  g:edge(x, h2, nn.linear(3, 4, F64), {kind = 'skip'})
  g:edge(h2, h2, nn.linear(4, 4, F64), {kind = 'recurrent'})
  g:edge(h2, y, nn.linear(4, 2, F64))
  local opts = {energy = energy, time_steps = 3}
  for k, v in pairs(extra or {}) do opts[k] = v end
  return ebl.model(g, opts)
end

describe('the engine on skip, recurrent and unrolled edges', function()
  for _, energy in ipairs{'pc', 'bipc', 'bipc_sq'} do
    it(energy .. ': finite differences of F at every time step',
      function()
        local m = recurrent(energy, {feedback_weight = 0.4,
          feedback_from_output = true, cb_weight = 0.2})
        m:infer(batch(4, {3}), labels(4, 2), {steps = 8, state_lr = 0.1})
        check_all(m, {'h1', 'h2', 'y'})
      end)
  end

  it('a cycle without delay is an error naming it', function()
    local g = ebl.graph()
    local x = g:node{name = 'x', shape = {2}, role = 'input'}
    local a = g:node{name = 'a', shape = {2}}
    local b = g:node{name = 'b', shape = {2}, role = 'output'}
    g:edge(x, a, nn.linear(2, 2))
    g:edge(a, b, nn.linear(2, 2))
    g:edge(b, a, nn.linear(2, 2), {kind = 'forward'})
    assert.has_error(function() ebl.model(g) end,
      'model: cycle of edges without delay: b -> a -> b (give a '
      .. 'recurrent edge delay=1)')
  end)

  it('a shape mismatch is caught when the edge is added', function()
    local g = ebl.graph()
    local x = g:node{name = 'x', shape = {3}, role = 'input'}
    local h = g:node{name = 'h', shape = {5}}
    assert.has_error(function() g:edge(x, h, nn.linear(3, 4)) end,
      "edge x -> h: the edge gives shape 4, node 'h' has shape 5")
    assert.has_error(function() g:edge(x, h, nn.linear(2, 5)) end,
      'edge x -> h: linear layer takes 2 features, input has shape 3')
  end)
end)

describe('EP', function()
  it('finite differences of E + beta C against dF/dv and dE/dtheta',
    function()
      ebl.manual_seed(9)
      local g = ebl.graph()
      local x = g:node{name = 'x', shape = {3}, role = 'input'}
      local h = g:node{name = 'h', shape = {4}, activation = 'sigmoid'}
      local y = g:node{name = 'y', shape = {2}, role = 'output',
        activation = 'tanh'}
      g:edge(x, h, nn.linear(3, 4, F64))
      g:edge(h, y, nn.linear(4, 2, F64))
      g:edge(x, y, nn.linear(3, 2, F64), {kind = 'skip'})
      local m = ebl.model(g, {energy = 'ep', loss = 'mse'})
      m:infer(batch(3, {3}), batch(3, {2}, 4), {steps = 3, state_lr = 0.1,
        beta = 0})
      check_all(m, {'h', 'y'}, {skip_params = true})
    end)
end)

describe('the default nudge', function()
  it('is beta 1 for PC and 0.2 for EP (its estimate is biased by beta)',
    function()
      local g = ebl.graph()
      local x = g:node{name = 'x', shape = {3}, role = 'input'}
      local y = g:node{name = 'y', shape = {2}, role = 'output',
        activation = 'sigmoid'}
      g:edge(x, y, nn.linear(3, 2))
      assert.are.equal(1, ebl.model(g, {energy = 'pc'}).config.beta)
      assert.are.equal(0.2, ebl.model(g, {energy = 'ep'}).config.beta)
      assert.are.equal(0.5, ebl.model(g, {energy = 'ep', beta = 0.5})
        .config.beta)
    end)
end)

describe('bp', function()
  it('grads are finite differences of the loss of a forward sweep',
    function()
      local m = mlp('bp')
      local xb, yb = batch(4, {3}), labels(4, 2)
      m:infer(xb, yb)
      local grads = {}
      for i, g in ipairs(m:grads()) do grads[i] = g:clone() end
      for i, p in ipairs(m:params()) do
        local err = worst_error(p, grads[i], function()
          return (m:infer(xb, yb))
        end, 1)
        assert.is_true(err < 1e-6, 'relative error ' .. err)
      end
    end)
end)

describe('incremental PC', function()
  it('updates the parameters at every step by -param_lr * dF/dtheta',
    function()
      local m = mlp('pc')
      local xb, yb = batch(4, {3}), labels(4, 2)
      -- One step by hand: gradients at the relaxed states of step 1.
      local w0 = m:params()[3]:clone()
      m:infer(xb, yb, {steps = 1, state_lr = 0.1, param_lr = 0.5})
      local w1 = m:params()[3]:clone()
      assert.is_true((w1 - w0):norm():item() > 1e-3)
      -- The same run without the option leaves the parameters alone.
      local n = mlp('pc')
      n:infer(xb, yb, {steps = 1, state_lr = 0.1})
      assert.are.equal(0, (n:params()[3] - w0):norm():item())
      -- And the step taken is exactly -param_lr * dF/dtheta at the
      -- states after the state update.
      local g = n:grads()[3]
      assert.is_true(((w0 - g * 0.5) - w1):norm():item() < 1e-12)
    end)
end)

describe('backtracking', function()
  -- An MLP on large inputs, where SGD at state lr 1.5 blows up.
  local function stiff()
    ebl.manual_seed(2)
    local m = ebl.model(ebl.models.mlp{sizes = {20, 64, 64, 5}},
      {energy = 'pc'})
    return m, ebl.randn{32, 20} * 3, ebl.randint(0, 5, {32}, 'int32')
  end

  it('keeps F from rising where plain SGD blows up', function()
    local m, x, y = stiff()
    local ok, e = pcall(m.infer, m, x, y, {steps = 60, state_lr = 1.5})
    assert(not ok or e > 1e3, 'plain SGD settled at ' .. tostring(e))
    local e2, k, tr, lr = m:infer(x, y, {steps = 60, state_lr = 1.5,
      backtrack = true, tol = 0})
    assert.are.equal(60, k)
    for i = 2, #tr do
      assert(tr[i] <= tr[i - 1] * (1 + 64 * 1.2e-7),
        ('F rose at step %d: %.9g after %.9g'):format(i - 1, tr[i],
          tr[i - 1]))
    end
    assert.is_true(e2 < tr[1])
    assert.is_true(lr < 1.5 and lr >= 1.5 / 2 ^ 10, 'state lr ' .. lr)
  end)

  it('changes nothing where SGD already descends', function()
    local m, x, y = stiff()
    local e1, _, t1, lr = m:infer(x, y, {steps = 30, state_lr = 0.05,
      backtrack = true, tol = 0})
    local e2, _, t2 = m:infer(x, y, {steps = 30, state_lr = 0.05, tol = 0})
    assert.are.equal(e2, e1)
    assert.are.same(t2, t1)
    assert.are.equal(0.05, lr)
  end)

  it('needs SGD on the states and no param_lr', function()
    local m, x, y = stiff()
    assert.has_error(function()
      m:infer(x, y, {backtrack = true, state_optim = 'adam'})
    end, "infer: backtrack needs state_optim 'sgd' and no param_lr")
    assert.has_error(function()
      m:infer(x, y, {backtrack = true, param_lr = 0.01})
    end, "infer: backtrack needs state_optim 'sgd' and no param_lr")
  end)
end)

describe('diagnostics', function()
  it('weight_ratios follow ||w|| / (lr ||dw||) per layer', function()
    local m = mlp('pc')
    m:infer(batch(4, {3}), labels(4, 2), {steps = 5, state_lr = 0.1})
    local ratios, names = m:weight_ratios(0.01)
    assert.are.same({'x->h.1', 'h->y.1'}, names)
    local p, g = m:params(), m:grads()
    local w = math.sqrt(p[3]:norm():item() ^ 2 + p[4]:norm():item() ^ 2)
    local d = math.sqrt(g[3]:norm():item() ^ 2 + g[4]:norm():item() ^ 2)
    assert.is_true(math.abs(ratios[2] - w / (0.01 * d)) < 1e-9 * ratios[2])
  end)

  it('trace records per-node energy and |dF/dv| at every step', function()
    local m = mlp('pc')
    local e, steps, trace = m:infer(batch(4, {3}), labels(4, 2),
      {steps = 6, state_lr = 0.1, tol = 0, record = true})
    local t = m:trace()
    assert.are.equal(steps + 1, #t.energy)
    assert.are.equal(steps + 1, #trace)
    -- Node energies sum to F minus beta C: the cost is at the output.
    local last = t.energy[#t.energy]
    assert.are.equal(0, last[1])
    assert.is_true(last[2] > 0 and last[3] > 0)
    assert.is_true(e > last[2] + last[3])
    assert.are.equal(0, t.grad[1][1])
    assert.is_true(t.grad[1][3] > 0)
  end)

  it('a NaN stops inference naming the node and the step', function()
    local m = mlp('pc')
    local w = m:params()[1]
    w[1][1] = 0 / 0
    assert.has_error(function()
      m:infer(batch(4, {3}), labels(4, 2), {steps = 5, state_lr = 0.1})
    end, "infer: the state of node 'h' became NaN or Inf at step 1")
  end)
end)

-- The error message of f(...), which must fail.
local function error_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok)
  return tostring(err)
end

describe('layer options and edge ops that once crashed the engine', function()
  it('the engine core refuses a description without its tables', function()
    assert.matches('_model_new: desc.config must be a table, got nil',
      error_of(ebl._model_new, {}), 1, true)
    assert.matches('_model_new: desc.edges must be a table, got string',
      error_of(ebl._model_new, {config = {}, nodes = {}, params = {},
        edges = 'x'}), 1, true)
  end)

  it('conv and pooling layers reject windows of no size', function()
    assert.matches("conv2d: option 'stride' must be an integer >= 1 or a "
      .. "pair {h, w} of them, got 0",
      error_of(nn.conv2d, 1, 2, 3, {stride = 0}), 1, true)
    assert.matches("option 'padding' must be an integer >= 0 or a pair "
      .. "{h, w} of them, got {1, -1}",
      error_of(nn.conv2d, 1, 2, 3, {padding = {1, -1}}), 1, true)
    assert.matches("conv2d: option 'groups' must be an integer >= 1, got 0",
      error_of(nn.conv2d, 1, 2, 3, {groups = 0}), 1, true)
    assert.matches("max_pool2d: option 'stride' must be an integer >= 1",
      error_of(nn.max_pool2d, 2, 0), 1, true)
    assert.matches("got 1e+300",
      error_of(ebl.models.cnn, {stride = 1e300}), 1, true)
  end)

  it('the engine checks parameter indices, ranks and windows', function()
    local shape = ebl._chain_shape
    local w = ebl.randn{2, 3}
    assert.matches('e: weight index 5 is not among the 1 parameters',
      error_of(shape, {{kind = 'linear', weight = 5}}, {w}, {3}, 'e'),
      1, true)
    assert.matches('e: weight index 0 is not among the 1 parameters',
      error_of(shape, {{kind = 'linear'}}, {w}, {3}, 'e'), 1, true)
    assert.matches('e: weight must have 4 dims, got 2',
      error_of(shape, {{kind = 'conv2d', weight = 1}}, {w}, {3, 4, 4},
               'e'), 1, true)
    assert.matches('e: bias has 5 values, the layer has 2 outputs',
      error_of(shape, {{kind = 'linear', weight = 1, bias = 2}},
               {w, ebl.randn{5}}, {3}, 'e'), 1, true)
    assert.matches('e: kernel must be >= 1, got 0x0',
      error_of(shape, {{kind = 'max_pool2d', kernel = 0}}, {}, {1, 4, 4},
               'e'), 1, true)
    assert.matches("model: 'stride' must be an integer below 2^31, got "
      .. "1e+300", error_of(shape, {{kind = 'max_pool2d', kernel = 2,
               stride = 1e300}}, {}, {1, 4, 4}, 'e'), 1, true)
    assert.matches('e: reshape sizes must be >= 1, got -1',
      error_of(shape, {{kind = 'reshape', shape = {-1, -4}}}, {}, {4},
               'e'), 1, true)
    assert.matches('e: groups must be >= 1, got 0',
      error_of(shape, {{kind = 'conv2d', weight = 1, groups = 0}},
               {ebl.randn{2, 1, 3, 3}}, {1, 4, 4}, 'e'), 1, true)
  end)
end)

describe('infer options that once gave wrong messages', function()
  local function model()
    local g = ebl.graph()
    local x = g:node{name = 'x', shape = {3}, role = 'input'}
    local y = g:node{name = 'y', shape = {2}, role = 'output'}
    g:edge(x, y, nn.linear(3, 2))
    return ebl.model(g)
  end
  local x, labels = ebl.randn{4, 3}, ebl.tensor{0, 1, 1, 0}:int()

  it('a count past 2^31 is named, not wrapped to a negative', function()
    local m = model()
    assert.matches('infer: steps must be <= 2147483647, got 2147483648',
      error_of(m.infer, m, x, labels, {steps = 1 << 31}), 1, true)
    assert.matches('infer: steps must be >= 0, got -1',
      error_of(m.infer, m, x, labels, {steps = -1}), 1, true)
  end)

  it('a bad state_lr or tol names its value', function()
    local m = model()
    assert.matches('infer: state_lr must be > 0, got 0.0',
      error_of(m.infer, m, x, labels, {steps = 2, state_lr = 0}), 1, true)
    assert.matches('infer: tol must be >= 0, got -1.0',
      error_of(m.infer, m, x, labels, {steps = 2, tol = -1}), 1, true)
  end)
end)

describe('time steps that once hung the engine', function()
  it('time_steps past the limit is an error, not an attempt', function()
    local g = ebl.graph()
    local x = g:node{name = 'x', shape = {3}, role = 'input'}
    local y = g:node{name = 'y', shape = {3}, role = 'output'}
    g:edge(x, y, nn.identity())
    assert.matches('model: time_steps must be <= 65536, got 1000000000',
      error_of(ebl.model, g, {time_steps = 1000000000}), 1, true)
    assert.matches("model: 'time_steps' must be an integer below 2^31",
      error_of(ebl.model, g, {time_steps = 1 << 31}), 1, true)
  end)
end)

describe('errors of model methods', function()
  it("name the line that called them, not ebl's own files", function()
    local m = mlp('pc')
    local x, y = batch(4, {3}), labels(4, 2)
    local calls = {
      {function() m:infer(batch(4, {5}), y) end,
        'model: x has shape 4x5, node'},
      {function() m:infer(x, labels(3, 2)) end,
        'model: labels must have shape 4 (one per sample), got 3'},
      {function() m:infer(x, y, {stpes = 3}) end,
        "bad argument #3 to 'infer' (unknown option 'stpes'"},
      {function() m:infer(x, y, {state_optim = 'x'}) end,
        'infer: state_optim must be sgd, momentum or adam, got x'},
      {function() mlp('pc'):learn(ebl.optim.sgd{lr = 0.1}) end,
        'grads: run infer first'},
      {function() m:predict(batch(4, {5})) end, 'model: x has shape 4x5'},
      {function() mlp('pc'):state('h') end, 'state: run m:infer first'},
      {function() m:state('nope') end, "state: no node named 'nope'"},
      {function() m:evaluate(batch(4, {5}), y) end, 'model: x has shape'},
      {function()
        local g = ebl.graph()
        local a = g:node{name = 'a', shape = {3}, role = 'input'}
        local b = g:node{name = 'b', shape = {4}, role = 'output'}
        g:edge(a, b, nn.linear(5, 4))
      end, 'edge a -> b: linear layer takes 5 features, input has shape 3'},
      {function()
        local g = ebl.graph()
        g:node{name = 'a', shape = {3}, role = 'input'}
        ebl.model(g)
      end, "model: the graph needs a node with role='input' and one"},
    }
    for _, c in ipairs(calls) do
      local err = error_of(function() c[1]() end)
      assert.matches(c[2], err, 1, true)
      assert.matches('^[^:]*engine_spec%.lua:%d+: ', err)
      assert.is_nil(err:find('lua/ebl/', 1, true), err)
    end
  end)

  it('argument errors of predict and evaluate name the method', function()
    for _, energy in ipairs{'pc', 'ep'} do
      local m = ebl.model(ebl.models.mlp{sizes = {3, 4, 2}, act_on = 'node'},
        {energy = energy})
      local calls = {
        {function() m:predict('x') end, 'predict'},
        {function() m:evaluate('x', labels(4, 2)) end, 'evaluate'},
      }
      for _, c in ipairs(calls) do
        local err = error_of(function() c[1]() end)
        assert.matches("bad argument #1 to '" .. c[2] .. "' (ebl.Tensor "
          .. 'expected, got string)', err, 1, true)
        assert.matches('^[^:]*engine_spec%.lua:%d+: ', err)
      end
    end
  end)
end)

describe('activations at the start of a chain', function()
  -- x -> h (linear), h -> y (act, then linear), backprop: the chain
  -- h -> y reads the live state h, which m:step moves after the
  -- forward sweep; its VJP must take the derivative there.
  for _, act in ipairs{'tanh', 'sigmoid'} do
    it(act .. ": bp's m:step differentiates at the current state",
      function()
        ebl.manual_seed(3)
        local g = ebl.graph()
        local x = g:node{name = 'x', shape = {3}, role = 'input'}
        local h = g:node{name = 'h', shape = {4}}
        local y = g:node{name = 'y', shape = {2}, role = 'output'}
        g:edge(x, h, nn.linear(3, 4, F64))
        g:edge(h, y, nn.chain(nn[act](), nn.linear(4, 2, F64)))
        local m = ebl.model(g, {energy = 'bp'})
        m:infer(batch(5, {3}), labels(5, 2), {state_lr = 0.5})
        m:step{state_lr = 0.5}
        local v = m:state('h'):clone()
        m:step{state_lr = 0.5}
        local s = v[act](v)
        local slope = act == 'tanh' and 1 - s * s or s * (1 - s)
        local want = slope * m:state_grad('y'):matmul(m:params()[3])
        local err = (m:state_grad('h') - want):abs():max():item()
        assert.is_true(err < 1e-12, ('dC/dh off by %.3g'):format(err))
      end)
  end
end)
