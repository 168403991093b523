-- BiPC against PC and backprop on the MLP 784-256-256-10 (tanh) with
-- 20k Fashion-MNIST training samples, 3 epochs, Adam 1e-3, batch 128:
-- the readings of eq. 10 and eq. 9 side by side. Prints one line per
-- configuration: test accuracy and training time.
-- Usage: ebl scripts/experiments/bipc_mlp.lua [config ...]
local ebl = require 'ebl'

local CONFIGS = {
  bp = {energy = 'bp', infer = {}},
  pc = {energy = 'pc', infer = {steps = 20, state_lr = 0.1}},
  pc60 = {energy = 'pc', infer = {steps = 60, state_lr = 0.1}},
  bipc_literal = {energy = 'bipc', literal = true,
    infer = {steps = 20, state_lr = 0.1}},
  bipc_sq_literal = {energy = 'bipc_sq', literal = true,
    infer = {steps = 20, state_lr = 0.1}},
  bipc = {energy = 'bipc', infer = {steps = 20, state_lr = 0.1}},
  bipc60 = {energy = 'bipc', infer = {steps = 60, state_lr = 0.1}},
  bipc_sq = {energy = 'bipc_sq', infer = {steps = 20, state_lr = 0.1}},
  bipc_w03 = {energy = 'bipc', feedback_weight = 0.03,
    infer = {steps = 20, state_lr = 0.1}},
  bipc_w01 = {energy = 'bipc', feedback_weight = 0.01,
    infer = {steps = 20, state_lr = 0.1}},
  bipc_sq_w03 = {energy = 'bipc_sq', feedback_weight = 0.03,
    infer = {steps = 20, state_lr = 0.1}},
  bipc_sq_w03_60 = {energy = 'bipc_sq', feedback_weight = 0.03,
    infer = {steps = 60, state_lr = 0.1}},
  bipc_states = {energy = 'bipc', feedback_learns = false,
    infer = {steps = 20, state_lr = 0.1}},
  bipc_states_w1 = {energy = 'bipc', feedback_learns = false,
    feedback_weight = 1, infer = {steps = 20, state_lr = 0.1}},
}
local ORDER = {'bp', 'pc', 'pc60', 'bipc_literal', 'bipc_sq_literal',
               'bipc', 'bipc60', 'bipc_sq'}

local data = ebl.data.fashion_mnist()
local n_train = tonumber(os.getenv('EBL_SUBSET') or 20000)
local epochs = tonumber(os.getenv('EBL_EPOCHS') or 3)

local function flat(x) return x:reshape(x:size(1), 784) end

local function run(name)
  local c = CONFIGS[name]
  ebl.manual_seed(1)
  local g = ebl.models.mlp{sizes = {784, 256, 256, 10}}
  local m = ebl.model(g, {energy = c.energy, literal = c.literal,
    feedback_weight = c.feedback_weight,
    feedback_learns = c.feedback_learns})
  local opt = ebl.optim.adam{lr = 1e-3}
  local train = ebl.data.loader(data.train, {batch = 128, seed = 1,
    normalize = true, subset = n_train})
  local test = ebl.data.loader(data.test, {batch = 1000, shuffle = false,
    normalize = {mean = train.mean, std = train.std}})
  local t0 = ebl.clock()
  for epoch = 1, epochs do
    for x, y in train:epoch(epoch) do
      m:infer(flat(x), y, c.infer)
      m:learn(opt)
    end
  end
  local seconds = ebl.clock() - t0
  local right, total = 0, 0
  for x, y in test:epoch(1) do
    right = right + m:evaluate(flat(x), y) * y:numel()
    total = total + y:numel()
  end
  print(('%-16s test acc %.4f  train %.1f s'):format(name, right / total,
    seconds))
end

local names = #arg > 0 and arg or ORDER
for _, name in ipairs(names) do run(name) end
