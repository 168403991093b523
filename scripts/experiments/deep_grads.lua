-- The paper's central claim (Fig. 4) put to the test: over Table 2's
-- long inference (200 steps), do PC's state gradients explode while
-- BiPC's stay bounded? Deep tanh MLPs on a Fashion-MNIST batch, after a
-- short training run with each energy, and Table 1's simple network at
-- width 1/4 (T = 5) on random images. Prints, per network, energy and
-- state lr: |dF/dv| (batch RMS of per-sample norms, summed over nodes)
-- at the first step, its largest value and its last value.
local ebl = require 'ebl'

local data = ebl.data.fashion_mnist()
local ENERGIES = {
  {name = 'pc', opts = {energy = 'pc'}},
  {name = 'bipc', opts = {energy = 'bipc'}},
  {name = 'bipc literal', opts = {energy = 'bipc', literal = true}},
  {name = 'bipc_sq literal', opts = {energy = 'bipc_sq', literal = true}},
}

local function total(row)
  local s = 0
  for _, v in ipairs(row) do s = s + v end
  return s
end

-- Runs one inference with records; returns first, max and last totals.
local function probe(m, x, y, lr)
  local ok, err = pcall(m.infer, m, x, y, {steps = 200, state_lr = lr,
    tol = 0, record = true})
  if not ok then return nil, err end
  local grads = m:trace().grad
  local first, peak, last = total(grads[1]), 0, total(grads[#grads])
  for _, row in ipairs(grads) do peak = math.max(peak, total(row)) end
  return first, peak, last
end

local function mlp(depth)
  local sizes = {784}
  for _ = 1, depth do sizes[#sizes + 1] = 128 end
  sizes[#sizes + 1] = 10
  return ebl.models.mlp{sizes = sizes}
end

local function report(label, m, x, y)
  for _, lr in ipairs{0.01, 0.1} do
    local first, peak, last = probe(m, x, y, lr)
    if first == nil then
      print(('%-34s lr %-5g diverged: %s'):format(label, lr, peak))
    else
      print(('%-34s lr %-5g |dF/dv| first %9.3g  max %9.3g  last %9.3g')
        :format(label, lr, first, peak, last))
    end
  end
end

local train = ebl.data.loader(data.train, {batch = 128, seed = 1,
  normalize = true, subset = tonumber(os.getenv('EBL_SUBSET') or 2560)})
for _, depth in ipairs{4, 8, 12} do
  for _, e in ipairs(ENERGIES) do
    ebl.manual_seed(1)
    local m = ebl.model(mlp(depth), e.opts)
    local opt = ebl.optim.adam{lr = 1e-3}
    local x_last, y_last
    for x, y in train:epoch(1) do
      x_last, y_last = x:reshape(x:size(1), 784), y
      pcall(function()
        m:infer(x_last, y_last, {steps = 20, state_lr = 0.1})
        m:learn(opt)
      end)
    end
    report(('mlp depth %d, %s'):format(depth, e.name), m, x_last, y_last)
  end
end

ebl.manual_seed(2)
local xs = ebl.randn{16, 3, 32, 32}
local ys = ebl.randint(0, 10, {16}, {dtype = 'int32'})
for _, e in ipairs(ENERGIES) do
  local opts = {time_steps = 5}
  for k, v in pairs(e.opts) do opts[k] = v end
  ebl.manual_seed(1)
  local m = ebl.model(ebl.models.skiprec_simple{width = 0.25}, opts)
  report('skiprec simple w1/4, ' .. e.name, m, xs, ys)
end
