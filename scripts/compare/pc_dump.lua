-- The ebl half of scripts/compare/pc_jax.py: builds the PC MLP
-- 784-256-256-10 (tanh, batch 128), runs one inference of 20 SGD steps
-- at state lr 0.1 from a forward sweep, and writes the weights, the
-- batch, the trace of F and the time of one loop iteration to the
-- safetensors file named by arg[1].
-- Usage: ./ebl scripts/compare/pc_dump.lua out.safetensors [threads]
local path, threads = arg[1], tonumber(arg[2] or '')
assert(path, 'usage: ebl scripts/compare/pc_dump.lua out.safetensors')
if threads then ebl.set_num_threads(threads) end

ebl.manual_seed(1)
local sizes = {784, 256, 256, 10}
local m = ebl.model(ebl.models.mlp{sizes = sizes}, {energy = 'pc'})
local x = ebl.randn{128, 784}
local y = ebl.randint(0, 10, {128}, 'int32')
local opts = {steps = 20, state_lr = 0.1, tol = 0}
local _, _, trace = m:infer(x, y, opts)

-- One iteration of the loop: 2n steps less n steps, over n, in wall
-- time and in the process's CPU time (which a shared machine's stolen
-- time does not inflate).
local function timed(steps)
  local wall, cpu = math.huge, math.huge
  for _ = 1, 15 do
    local t0, c0 = ebl.clock(), os.clock()
    m:infer(x, y, {steps = steps, state_lr = 0.1, tol = 0})
    wall = math.min(wall, ebl.clock() - t0)
    cpu = math.min(cpu, os.clock() - c0)
  end
  return wall, cpu
end
local n = 100
local w1, c1 = timed(n)
local w2, c2 = timed(2 * n)
local per_iter, per_iter_cpu = (w2 - w1) / n, (c2 - c1) / n

local out = {x = x, y = y, trace = ebl.tensor(trace, 'float64'),
  per_iter = ebl.tensor({per_iter, per_iter_cpu}, 'float64')}
for i, name in ipairs(m:param_names()) do out[name] = m:params()[i] end
ebl.save(path, out, {threads = tostring(ebl.get_num_threads())})
print(('ebl: %.1f us per iteration (%.1f us of CPU), %d threads'):format(
  per_iter * 1e6, per_iter_cpu * 1e6, ebl.get_num_threads()))
