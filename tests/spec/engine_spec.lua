-- The energy engine against independent references: central finite
-- differences in float64 of m:energy() against m:state_grad() and
-- m:grads(), for every energy, on graphs with linear, conv, pooling,
-- skip, recurrent and time-unrolled edges.
local ebl = require 'ebl'
local nn = ebl.nn
local F64 = {dtype = 'float64'}

local EPS = 1e-6

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
  local grads = m:grads()
  for i, p in ipairs(m:params()) do
    local g = grads[i]:clone()
    local err = worst_error(p, g, f, 1)
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
      assert.is_true(m:error('y'):norm():item() == 0)
    end)
end)
