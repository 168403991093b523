-- The engine on the GPU: one iteration of m:infer's loop (dF/dv, the
-- state update, the energy and, on the GPU, the check kept there) of PC
-- and BiPC on the MLP 784-256-256-10 (tanh) at batch 128 and 2048, in
-- microseconds, beside the same on the CPU, and the cudaMalloc calls
-- made per iteration (must be 0). Run by scripts/gpu_check.sh; says so
-- and ends when no GPU is usable.
local ebl = require 'ebl'

if not ebl.cuda.available() then
  print('bench_cuda.lua: no GPU (' .. ebl.cuda.reason() .. ')')
  return
end

-- Seconds of one m:infer of the given steps (tol 0: all are taken), the
-- best of five, and the cudaMalloc calls of the last.
local function timed_infer(m, x, y, steps)
  local best, mallocs = math.huge, 0
  for _ = 1, 5 do
    local before = ebl.cuda.memory().device_mallocs
    local t0 = ebl.clock()
    m:infer(x, y, {steps = steps, state_lr = 0.05, tol = 0})
    best = math.min(best, ebl.clock() - t0)
    mallocs = ebl.cuda.memory().device_mallocs - before
  end
  return best, mallocs
end

-- Per iteration: 2n steps less n steps, over n (the batch's own work
-- cancels out). m:infer returns a number, so it waits for the device.
local function per_iter(m, x, y, n)
  m:infer(x, y, {steps = 2, state_lr = 0.05})
  local t1, m1 = timed_infer(m, x, y, n)
  local t2, m2 = timed_infer(m, x, y, 2 * n)
  return (t2 - t1) / n, (m2 - m1) / n
end

local sizes = {784, 256, 256, 10}
for _, batch in ipairs{128, 2048} do
  ebl.manual_seed(1)
  local x = ebl.randn{batch, 784}
  local y = ebl.randint(0, 10, {batch}, {dtype = 'int32'})
  for _, energy in ipairs{'pc', 'bipc'} do
    local us, mallocs = {}, 0
    for _, device in ipairs{'cpu', 'cuda'} do
      ebl.set_default_device(device)
      ebl.manual_seed(2)
      local m = ebl.model(ebl.models.mlp{sizes = sizes}, {energy = energy})
      ebl.set_default_device('cpu')
      local t, mc = per_iter(m, x:to(device), y:to(device),
        device == 'cpu' and 20 or 100)
      us[device] = t * 1e6
      if device == 'cuda' then mallocs = mc end
    end
    print(('%s_iter_us  %s MLP 784-256-256-10 b%d: GPU %8.1f us/iter, '
      .. 'CPU %8.1f us/iter, cudaMalloc/iter %.2f'):format(energy, energy,
      batch, us.cuda, us.cpu, mallocs))
  end
end
