-- The engine on the GPU: one inference iteration (m:step(): dF/dv, the
-- state update, the energy) of PC and BiPC on the MLP 784-256-256-10
-- (tanh, batch 128), in microseconds, beside the same on the CPU, and
-- the cudaMalloc calls made per iteration (must be 0). Run by
-- scripts/gpu_check.sh; says so and ends when no GPU is usable.
local ebl = require 'ebl'

if not ebl.cuda.available() then
  print('bench_cuda.lua: no GPU (' .. ebl.cuda.reason() .. ')')
  return
end

-- Seconds per m:step(), the best of five runs of iters steps.
local function per_step(m, device, iters)
  local best = math.huge
  for _ = 1, 5 do
    local t0 = ebl.clock()
    for _ = 1, iters do m:step() end
    if device == 'cuda' then ebl.cuda.synchronize() end
    best = math.min(best, ebl.clock() - t0)
  end
  return best / iters
end

local sizes = {784, 256, 256, 10}
ebl.manual_seed(1)
local x = ebl.randn{128, 784}
local y = ebl.randint(0, 10, {128}, {dtype = 'int32'})
for _, energy in ipairs{'pc', 'bipc'} do
  local us = {}
  local mallocs
  for _, device in ipairs{'cpu', 'cuda'} do
    ebl.set_default_device(device)
    ebl.manual_seed(2)
    local m = ebl.model(ebl.models.mlp{sizes = sizes}, {energy = energy})
    ebl.set_default_device('cpu')
    m:infer(x:to(device), y:to(device), {steps = 5, state_lr = 0.05})
    local before = ebl.cuda.memory().device_mallocs
    us[device] = per_step(m, device, 100) * 1e6
    mallocs = (ebl.cuda.memory().device_mallocs - before) / 500
  end
  print(('%s_iter_us  %s MLP 784-256-256-10 b128: GPU %8.1f us/iter, '
    .. 'CPU %8.1f us/iter, cudaMalloc/iter %.2f'):format(energy, energy,
    us.cuda, us.cpu, mallocs))
end
