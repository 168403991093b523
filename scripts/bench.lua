-- `make bench`, the engine part: one iteration of m:infer's loop, PC and BiPC,
-- on the MLP 784-256-256-10 (tanh, batch 128) and on Table 1's simple
-- network (width 1/4, batch 32, T = 5): microseconds per iteration, the
-- FLOP rate against sgemm's at the same shapes, and tensors allocated
-- per iteration (must be 0).
local ebl = require 'ebl'

local function best_of(reps, fn)
  local best = math.huge
  for _ = 1, reps do
    local t0 = ebl.clock()
    fn()
    best = math.min(best, ebl.clock() - t0)
  end
  return best
end

-- FLOPs of one PC iteration on the MLP: the forward products of the
-- non-cached edges and the VJPs of every edge into a free state.
local function mlp_flops(batch, sizes, bipc)
  local f = 0
  for i = 2, #sizes do
    local mm = 2 * batch * sizes[i - 1] * sizes[i]
    if i > 2 then f = f + mm end          -- forward (x -> h1 is cached)
    if i > 2 then f = f + mm end          -- VJP into the source state
    -- BiPC: edges between hidden nodes send feedback (its transpose's
    -- forward and VJP); none into the input (no C_b) or from the output.
    if bipc and i > 2 and i < #sizes then f = f + 2 * mm end
  end
  return f
end

-- sgemm's rate (GFLOP/s) on the MLP's products.
local function sgemm_rate(batch, sizes)
  local a, b = {}, {}
  for i = 2, #sizes do
    a[i] = ebl.randn{batch, sizes[i - 1]}
    b[i] = ebl.randn{sizes[i - 1], sizes[i]}
  end
  local flops = 0
  for i = 3, #sizes do flops = flops + 2 * batch * sizes[i - 1] * sizes[i] end
  local t = best_of(20, function()
    for _ = 1, 20 do
      for i = 3, #sizes do ebl.matmul(a[i], b[i]) end
    end
  end) / 20
  return flops / t / 1e9
end

-- Seconds of one m:infer of the given steps (tol 0: all are taken),
-- the best of reps, and the tensors it allocated.
local function timed_infer(m, x, y, steps, reps)
  local best, allocs = math.huge, 0
  for _ = 1, reps do
    local a0 = select(4, ebl.memory())
    local t0 = ebl.clock()
    m:infer(x, y, {steps = steps, state_lr = 0.05, tol = 0})
    best = math.min(best, ebl.clock() - t0)
    allocs = select(4, ebl.memory()) - a0
  end
  return best, allocs
end

-- One iteration of m:infer's loop: the time and allocations of 2n steps
-- less those of n steps, over n, so that the per-batch work (copying
-- the batch in, the forward sweep) cancels out.
local function report(name, m, x, y, flops, rate, iters, reps)
  iters, reps = iters or 50, reps or 5
  m:infer(x, y, {steps = 1, state_lr = 0.05})
  local t1, a1 = timed_infer(m, x, y, iters, reps)
  local t2, a2 = timed_infer(m, x, y, 2 * iters, reps)
  local t, per_iter = (t2 - t1) / iters, (a2 - a1) / iters
  local line = ('%-34s %9.1f us/iter'):format(name, t * 1e6)
  if flops then
    line = line .. ('  %6.1f GFLOP/s (%3.0f%% of sgemm %5.1f)'):format(
      flops / t / 1e9, 100 * flops / t / 1e9 / rate, rate)
  end
  line = line .. ('  tensors allocated/iter %.2f'):format(per_iter)
  print(line)
end

local sizes = {784, 256, 256, 10}
local rate = sgemm_rate(128, sizes)
ebl.manual_seed(1)
local x = ebl.randn{128, 784}
local y = ebl.randint(0, 10, {128}, {dtype = 'int32'})
for _, energy in ipairs{'pc', 'bipc'} do
  local m = ebl.model(ebl.models.mlp{sizes = sizes}, {energy = energy})
  report(energy .. ' MLP 784-256-256-10 b128', m, x, y,
    mlp_flops(128, sizes, energy == 'bipc'), rate)
end

local xs = ebl.randn{32, 3, 32, 32}
local ys = ebl.randint(0, 10, {32}, {dtype = 'int32'})
for _, energy in ipairs{'pc', 'bipc'} do
  local g = ebl.models.skiprec_simple{width = 0.25}
  local m = ebl.model(g, {energy = energy, time_steps = 5})
  report(energy .. ' skiprec simple w1/4 b32 T5', m, xs, ys, nil, nil, 1,
    1)
end
