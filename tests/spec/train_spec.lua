-- Training end to end on small problems with fixed seeds and step
-- limits: every energy learns XOR and two spirals.
local ebl = require 'ebl'
local nn = ebl.nn

local function xor()
  return ebl.tensor({{0, 0}, {0, 1}, {1, 0}, {1, 1}}),
         ebl.tensor({0, 1, 1, 0}, 'int32')
end

-- Two interleaved spirals of n points each, one turn each.
local function spirals(n)
  local xs, ys = {}, {}
  for c = 0, 1 do
    for i = 1, n do
      local r = i / n
      local a = 2 * math.pi * r + c * math.pi
      xs[#xs + 1] = {2 * r * math.cos(a), 2 * r * math.sin(a)}
      ys[#ys + 1] = c
    end
  end
  return ebl.tensor(xs), ebl.tensor(ys, 'int32')
end

local function one_hot(y, k)
  local n = y:numel()
  local t = ebl.zeros({n, k})
  local labels = y:totable()
  for i = 1, n do t[i][labels[i] + 1] = 1 end
  return t
end

local function net(energy, sizes, act)
  local g = ebl.graph()
  local prev = g:node{name = 'x', shape = {sizes[1]}, role = 'input'}
  for i = 2, #sizes do
    local last = i == #sizes
    local node = g:node{name = 'n' .. i, shape = {sizes[i]},
      role = last and 'output' or nil,
      activation = energy == 'ep' and 'sigmoid' or nil}
    local lin = nn.linear(sizes[i - 1], sizes[i])
    if energy == 'ep' or last then
      g:edge(prev, node, lin)
    else
      g:edge(prev, node, nn.chain(lin, nn[act or 'tanh']()))
    end
    prev = node
  end
  return g
end

-- Settings per energy and problem (BiPC with its default reading, see
-- docs/ENERGIES.md). PC's inference becomes stiff as weights grow, so the
-- learning rates stay moderate. One thread: results are bitwise the same
-- on every machine for a given thread count, so the run checked here is
-- the run CI makes.
local SETTINGS = {
  xor = {
    pc = {infer = {steps = 20, state_lr = 0.1}, epochs = 600, lr = 0.02},
    bipc = {infer = {steps = 20, state_lr = 0.1}, epochs = 600, lr = 0.02},
    ep = {infer = {steps = 40, state_lr = 0.5, beta = 0.5}, loss = 'mse',
      epochs = 300, lr = 0.05},
    bp = {infer = {}, epochs = 300, lr = 0.05},
  },
  -- Two spirals, settings checked over seeds 1-6. Plain SGD inference
  -- left PC at 74-99% (stiff steps as the weights grow); with
  -- backtracking and Adam at 0.005 for 1200 epochs every seed reached
  -- 98.5% or more. BiPC at its default lambda (0.01) swings between 70%
  -- and 99% (docs/ENERGIES.md); at lambda 0.001 it reached 93-99%. EP
  -- with these settings reached 83.5-98%. A linear classifier trained
  -- alike gets 50% (each spiral is the other turned by half a turn), so
  -- every bar needs a curved boundary.
  spirals = {
    pc = {infer = {steps = 20, state_lr = 0.1, backtrack = true},
      epochs = 1200, lr = 0.005},
    bipc = {infer = {steps = 20, state_lr = 0.1, backtrack = true},
      epochs = 1200, lr = 0.005, feedback_weight = 0.001, bar = 0.9},
    ep = {infer = {steps = 60, state_lr = 0.5, beta = 0.3}, loss = 'mse',
      epochs = 600, lr = 0.03, bar = 0.8},
    bp = {infer = {}, epochs = 600, lr = 0.01},
  },
}

-- Full-batch training; returns the training accuracy.
local function train(energy, x, y, sizes, s)
  local threads = ebl.get_num_threads()
  ebl.set_num_threads(1)
  ebl.manual_seed(1)
  local m = ebl.model(net(energy, sizes), {energy = energy,
    loss = s.loss or 'ce', feedback_weight = s.feedback_weight})
  local target = s.loss == 'mse' and one_hot(y, sizes[#sizes]) or y
  local opt = ebl.optim.adam{lr = s.lr}
  for _ = 1, s.epochs do
    m:infer(x, target, s.infer)
    m:learn(opt)
  end
  local acc = m:evaluate(x, y)
  ebl.set_num_threads(threads)
  return acc
end

describe('training on XOR', function()
  for _, energy in ipairs{'pc', 'bipc', 'ep', 'bp'} do
    it(energy .. ' reaches 100%', function()
      local x, y = xor()
      local acc = train(energy, x, y, {2, 8, 2}, SETTINGS.xor[energy])
      assert.are.equal(1, acc)
    end)
  end
end)

describe('training on two spirals', function()
  for _, energy in ipairs{'pc', 'bipc', 'ep', 'bp'} do
    local s = SETTINGS.spirals[energy]
    local bar = s.bar or 0.95
    it(('%s reaches %d%% of the training set'):format(energy, bar * 100),
      function()
        local x, y = spirals(100)
        local acc = train(energy, x, y, {2, 32, 32, 2}, s)
        assert.is_true(acc >= bar, ('accuracy %.3f'):format(acc))
      end)
  end
end)
