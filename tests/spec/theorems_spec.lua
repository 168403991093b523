-- The engine against known results computed by separate paths: PC with
-- a weak output nudge gives backprop's gradients (backprop written here
-- with tensor ops, not through the engine), EP's symmetric estimate
-- approaches the derivative of the loss at the free fixed point.
local ebl = require 'ebl'
local nn = ebl.nn
local F64 = {dtype = 'float64'}

local function cosine_and_ratio(a_list, b_list)
  local dot, na, nb = 0, 0, 0
  for i = 1, #a_list do
    local a, b = a_list[i]:reshape(-1), b_list[i]:reshape(-1)
    dot = dot + (a * b):sum():item()
    na = na + (a * a):sum():item()
    nb = nb + (b * b):sum():item()
  end
  return dot / math.sqrt(na * nb), math.sqrt(na / nb)
end

local function labels(n, k)
  local t = {}
  for i = 1, n do t[i] = (i * 5) % k end
  return ebl.tensor(t, 'int32')
end

-- Backprop of the cross-entropy through a tanh MLP, by hand.
local function mlp_backprop(x, y, layers)
  local acts, pre = {x}, {}
  for i, l in ipairs(layers) do
    local z = ebl.matmul(acts[i], l.weight:transpose(1, 2)) + l.bias
    pre[i] = z
    acts[i + 1] = i < #layers and z:tanh() or z
  end
  local _, dz = ebl.cross_entropy_grad(acts[#layers + 1], y)
  local grads = {}
  for i = #layers, 1, -1 do
    local l = layers[i]
    grads[2 * i - 1] = ebl.matmul(dz:transpose(1, 2), acts[i])
    grads[2 * i] = dz:sum(1)
    if i > 1 then
      local da = ebl.matmul(dz, l.weight)
      dz = da * (1 - acts[i] * acts[i])
    end
  end
  return grads
end

describe('PC with a weak nudge', function()
  it('gives backprop gradients on an MLP (cos > 0.99, norms 1%)',
    function()
      ebl.manual_seed(11)
      local sizes = {6, 8, 7, 4}
      local g = ebl.graph()
      local prev = g:node{name = 'x', shape = {6}, role = 'input'}
      local layers = {}
      for i = 2, #sizes do
        local last = i == #sizes
        local node = g:node{name = 'n' .. i, shape = {sizes[i]},
          role = last and 'output' or nil}
        local lin = nn.linear(sizes[i - 1], sizes[i], F64)
        layers[#layers + 1] = lin
        g:edge(prev, node, last and lin or nn.chain(lin, nn.tanh()))
        prev = node
      end
      local beta = 1e-3
      local m = ebl.model(g, {energy = 'pc', beta = beta})
      local x = ebl.randn({10, 6}, F64)
      local y = labels(10, 4)
      m:infer(x, y, {steps = 3000, state_lr = 0.2, tol = 0})
      local pc = {}
      for i, t in ipairs(m:grads()) do pc[i] = t / beta end
      local bp = mlp_backprop(x, y, layers)
      local cos, ratio = cosine_and_ratio(pc, bp)
      assert.is_true(cos > 0.99, 'cosine ' .. cos)
      assert.is_true(math.abs(ratio - 1) < 0.01, 'norm ratio ' .. ratio)
    end)

  it('gives backprop gradients on a small CNN', function()
    ebl.manual_seed(12)
    local g = ebl.graph()
    local x = g:node{name = 'x', shape = {1, 6, 6}, role = 'input'}
    local h = g:node{name = 'h', shape = {3, 6, 6}}
    local y = g:node{name = 'y', shape = {4}, role = 'output'}
    local conv = nn.conv2d(1, 3, 3, {padding = 1, dtype = 'float64'})
    local lin = nn.linear(27, 4, F64)
    g:edge(x, h, nn.chain(conv, nn.tanh()))
    g:edge(h, y, nn.chain(nn.avg_pool2d(2), nn.flatten(), lin))
    local beta = 1e-3
    local m = ebl.model(g, {energy = 'pc', beta = beta})
    local xb = ebl.randn({5, 1, 6, 6}, F64)
    local yb = labels(5, 4)
    m:infer(xb, yb, {steps = 3000, state_lr = 0.2, tol = 0})
    local pc = {}
    for i, t in ipairs(m:grads()) do pc[i] = t / beta end
    -- Backprop by hand with the binding's layer functions.
    local z = ebl.conv2d(xb, conv.weight, conv.bias, {padding = 1})
    local a = z:tanh()
    local p = ebl.avg_pool2d(a, 2)
    local out = ebl.matmul(p:reshape(5, 27), lin.weight:transpose(1, 2))
      + lin.bias
    local _, dout = ebl.cross_entropy_grad(out, yb)
    local dlw = ebl.matmul(dout:transpose(1, 2), p:reshape(5, 27))
    local dlb = dout:sum(1)
    local dp = ebl.matmul(dout, lin.weight):reshape(5, 3, 3, 3)
    local da = ebl.avg_pool2d_vjp(dp, a, 2)
    local dz = da * (1 - a * a)
    local dcw = ebl.conv2d_weight_vjp(xb, dz, conv.weight, {padding = 1})
    local dcb = ebl.conv2d_bias_vjp(dz)
    local cos, ratio = cosine_and_ratio(pc, {dcw, dcb, dlw, dlb})
    assert.is_true(cos > 0.99, 'cosine ' .. cos)
    assert.is_true(math.abs(ratio - 1) < 0.01, 'norm ratio ' .. ratio)
  end)
end)

describe('EP with symmetric nudging', function()
  it('approaches dL/dtheta at the free fixed point (cos > 0.95)',
    function()
      ebl.manual_seed(13)
      local g = ebl.graph()
      local x = g:node{name = 'x', shape = {4}, role = 'input'}
      local h = g:node{name = 'h', shape = {6}, activation = 'sigmoid'}
      local y = g:node{name = 'y', shape = {3}, role = 'output',
        activation = 'sigmoid'}
      g:edge(x, h, nn.linear(4, 6, F64))
      g:edge(h, y, nn.linear(6, 3, F64))
      local m = ebl.model(g, {energy = 'ep', loss = 'mse'})
      local xb = ebl.randn({6, 4}, F64)
      local target = ebl.rand({6, 3}, F64)
      local settle = {steps = 600}
      local opts = {steps = 600, state_lr = 0.2, tol = 0, beta = 0.05}
      m:infer(xb, target, opts)
      local est = {}
      for i, t in ipairs(m:grads()) do est[i] = t:clone() end
      -- The loss at the free fixed point, re-solved after each nudge of
      -- a parameter.
      local function loss()
        m:infer(xb, target, {steps = settle.steps, state_lr = 0.2,
          tol = 0, beta = 0})
        return ebl.mse_loss(m:state('y'), target)
      end
      local fd = {}
      for i, p in ipairs(m:params()) do
        local flat = p:reshape(-1)
        local g_fd = ebl.zeros_like(flat)
        for j = 1, flat:numel() do
          local old = flat[j]
          flat[j] = old + 1e-5
          local up = loss()
          flat[j] = old - 1e-5
          local down = loss()
          flat[j] = old
          g_fd[j] = (up - down) / 2e-5
        end
        fd[i] = g_fd
      end
      local cos = cosine_and_ratio(est, fd)
      assert.is_true(cos > 0.95, 'cosine ' .. cos)
    end)
end)
