-- The CUDA backend against float64 references computed on the CPU from
-- the same float32 inputs: every op of the tensor API on random shapes,
-- measured norm-wise (||gpu - ref|| / ||ref|| <= 1e-6 for elementwise
-- float32, 1e-5 for matrix products and convolutions), exact agreement
-- where the CPU's float32 result is exact (comparisons, casts, integer
-- ops, pooling indices, random numbers), the allocator, out of memory,
-- errors, and an inference of the energy engine. On a machine without a
-- GPU every GPU test is pending (reported as skipped).
local ebl = rawget(_G, 'ebl') or require 'ebl'

local HAVE = ebl.cuda.available()
local ELEMENTWISE, PRODUCT = 1e-6, 1e-5

-- An `it` that needs the GPU.
local function gpu_it(name, fn)
  it(name, function()
    if not HAVE then
      pending('no GPU: ' .. ebl.cuda.reason())
      return
    end
    fn()
  end)
end

-- ||got - ref|| / ||ref|| in float64 on the CPU (the plain norm when
-- ref is zero).
local function rel_err(got, ref)
  local g, r = got:cpu():double(), ref:cpu():double()
  assert.are.same(r:shape(), g:shape())
  local den = r:norm():item()
  local num = (g - r):norm():item()
  return den > 0 and num / den or num
end

-- Asserts rel_err(got, ref) <= tol, naming what.
local function near(got, ref, tol, what)
  local err = rel_err(got, ref)
  assert(err <= tol, ('%s: relative error %.3g > %.1g'):format(what, err,
                                                                 tol))
end

-- Asserts that got (any device) holds exactly ref's values and dtype,
-- NaN where ref has NaN.
local function same(got, ref, what)
  assert.are.equal(ref:dtype(), got:dtype(), what)
  assert.are.same(ref:shape(), got:shape(), what)
  local g, r = got:cpu():double(), ref:cpu():double()
  local gnan, rnan = g:ne(g), r:ne(r)
  assert(gnan:ne(rnan):sum():item() == 0, what .. ': NaN elsewhere')
  local diff = (ebl.where(gnan, 0, g) - ebl.where(rnan, 0, r)):abs()
  local worst = diff:numel() > 0 and diff:max():item() or 0
  assert(worst == 0, ('%s: differs by %.9g'):format(what, worst))
end

-- Float32 CPU values uniform in [lo, hi).
local function uniform(shape, lo, hi)
  return ebl.rand(shape) * (hi - lo) + (lo or 0)
end

-- Runs f on GPU float32 copies of the tensor arguments and on CPU
-- float64 copies; returns both first results.
local function both(f, ...)
  local gpu, ref = {}, {}
  for i, v in ipairs{...} do
    local t = ebl.is_tensor(v)
    gpu[i] = t and v:cuda() or v
    ref[i] = t and v:double() or v
  end
  return f(table.unpack(gpu)), f(table.unpack(ref))
end

-- Asserts that f on the GPU matches f in float64 within tol.
local function check(what, tol, f, ...)
  local got, ref = both(f, ...)
  assert.are.equal('cuda', got:device(), what)
  near(got, ref, tol, what)
end

-- Runs f on the GPU and on the CPU with the same float32 inputs.
local function check_same(what, f, ...)
  local gpu, cpu = {}, {}
  for i, v in ipairs{...} do
    gpu[i] = ebl.is_tensor(v) and v:cuda() or v
    cpu[i] = v
  end
  same(f(table.unpack(gpu)), f(table.unpack(cpu)), what)
end

-- A random shape of ndim sizes in lo..hi.
local function shape_of(ndim, lo, hi)
  local s = {}
  for i = 1, ndim do s[i] = math.random(lo, hi) end
  return s
end

math.randomseed(4242)

describe('cuda without a GPU', function()
  it('reports why and refuses cuda tensors', function()
    if HAVE then
      pending('a GPU is present')
      return
    end
    assert.is_false(ebl.cuda.available())
    assert.is_true(#ebl.cuda.reason() > 0)
    assert.are.equal('integer', math.type(ebl.cuda.device_count()))
    local ok, err = pcall(function() return ebl.zeros(2):cuda() end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find('cuda is not available', 1, true))
    ok, err = pcall(ebl.set_default_device, 'cuda')
    assert.is_false(ok)
    assert.are.equal('cpu', ebl.default_device())
    assert.are.same({in_use = 0, cached = 0, peak = 0, requested = 0,
      device_mallocs = 0, device_frees = 0}, ebl.cuda.memory())
  end)
end)

describe('cuda tensors', function()
  gpu_it('move between devices and keep their values', function()
    local x = uniform({3, 4, 5}, -1, 1)
    local g = x:cuda()
    assert.are.equal('cuda', g:device())
    assert.are.equal('cpu', g:cpu():device())
    same(g:cpu(), x, 'round trip')
    same(x:to('cuda'):to('cpu'), x, 'to')
    same(ebl.zeros({2, 3}, {device = 'cuda'}), ebl.zeros{2, 3}, 'zeros')
    assert.are.equal(g, g:cuda())
    assert.truthy(tostring(g):find('cuda', 1, true))
    assert.are.same(x:totable(), g:totable())
    assert.are.equal(x[2][3][4], g[2][3][4])
  end)

  gpu_it('make the same tensors as the CPU', function()
    local cuda = {device = 'cuda'}
    same(ebl.ones({4, 3}, cuda), ebl.ones{4, 3}, 'ones')
    same(ebl.full({5}, 2.5, cuda), ebl.full({5}, 2.5), 'full')
    same(ebl.arange(0, 10, 0.5, cuda), ebl.arange(0, 10, 0.5), 'arange')
    same(ebl.arange(3, -7, -2, {device = 'cuda', dtype = 'int32'}),
      ebl.arange(3, -7, -2, 'int32'), 'arange int32')
    same(ebl.linspace(-1, 1, 7, cuda), ebl.linspace(-1, 1, 7), 'linspace')
    same(ebl.eye(4, 6, cuda), ebl.eye(4, 6), 'eye')
    same(ebl.full({3}, 300, {device = 'cuda', dtype = 'uint8'}),
      ebl.full({3}, 300, 'uint8'), 'full saturates')
    ebl.manual_seed(3)
    local p = ebl.randperm(50, cuda)
    ebl.manual_seed(3)
    same(p, ebl.randperm(50), 'randperm')
  end)

  gpu_it('cast between dtypes as the CPU does', function()
    local x = uniform({7, 9}, -400, 400)
    x[1][1] = 0 / 0
    for _, dt in ipairs{'float32', 'float64', 'int32', 'uint8'} do
      check_same('float32 to ' .. dt, function(t) return t:to(dt) end, x)
      local y = x:to(dt)
      for _, dt2 in ipairs{'float32', 'float64', 'int32', 'uint8'} do
        check_same(dt .. ' to ' .. dt2, function(t) return t:to(dt2) end,
          y)
      end
    end
  end)

  gpu_it('copy strided, transposed and broadcast views', function()
    for _ = 1, 5 do
      local s = shape_of(4, 1, 7)
      local x = uniform(s, -1, 1)
      check_same('transpose', function(t)
        return t:transpose(1, 3):contiguous() end, x)
      check_same('permute', function(t)
        return t:permute{4, 2, 1, 3}:clone() end, x)
      check_same('narrow', function(t)
        return t:narrow(2, 1, math.max(1, s[2] - 1)):clone() end, x)
      check_same('select', function(t) return t:select(4, 1):clone() end, x)
      check_same('expand', function(t)
        return t:select(1, 1):unsqueeze(1):expand{3, s[2], s[3], s[4]}
          :clone() end, x)
    end
  end)

  gpu_it('write rows and elements in place', function()
    local x = uniform({4, 5}, -1, 1)
    local g = x:cuda()
    g[2] = 7
    x[2] = 7
    g[3] = ebl.full({5}, -2):cuda()
    x[3] = ebl.full({5}, -2)
    g[1][4] = 11
    x[1][4] = 11
    same(g, x, 'rows')
    g:fill(0.25)
    same(g, ebl.full({4, 5}, 0.25), 'fill')
  end)
end)

describe('cuda elementwise ops', function()
  local UNARY = {
    {'neg', -3, 3}, {'abs', -3, 3}, {'square', -3, 3}, {'sign', -3, 3},
    {'exp', -5, 5}, {'log', 0.1, 10}, {'sqrt', 0, 10},
    {'reciprocal', 0.5, 4}, {'tanh', -4, 4}, {'sigmoid', -8, 8},
    {'relu', -3, 3}, {'gelu', -4, 4}, {'softplus', -20, 20},
    {'tanh_grad', -4, 4}, {'sigmoid_grad', -8, 8}, {'relu_grad', -3, 3},
    {'gelu_grad', -4, 4}, {'softplus_grad', -8, 8},
  }

  for _, u in ipairs(UNARY) do
    gpu_it(u[1] .. ' matches float64', function()
      local x = uniform(shape_of(3, 1, 40), u[2], u[3])
      check(u[1], ELEMENTWISE, function(t) return t[u[1]](t) end, x)
      check(u[1] .. '_ on a view', ELEMENTWISE, function(t)
        local v = t:transpose(1, 3):clone():transpose(1, 3)
        v[u[1] .. '_'](v)
        return v
      end, x)
    end)
  end

  gpu_it('leaky_relu, its derivative and clamp match float64', function()
    local x = uniform({33, 17}, -2, 2)
    check('leaky_relu', ELEMENTWISE, function(t)
      return t:leaky_relu(0.1) end, x)
    check('leaky_relu_grad', ELEMENTWISE, function(t)
      return t:leaky_relu_grad(0.1) end, x)
    check('clamp', ELEMENTWISE, function(t) return t:clamp(-0.5, 0.7) end,
      x)
    check('clamp above', ELEMENTWISE, function(t)
      return t:clamp(nil, 0.3) end, x)
  end)

  -- {op, range of a, range of b}: ranges keep every result finite both
  -- ways round (b op a too), but for pow, whose b may be negative.
  local BINARY = {
    {'add', -2, 2, -2, 2}, {'sub', -2, 2, -2, 2}, {'mul', -2, 2, -2, 2},
    {'div', 0.5, 2, 0.5, 2}, {'pow', 0.5, 2, -2, 2},
    {'maximum', -2, 2, -2, 2}, {'minimum', -2, 2, -2, 2},
  }

  -- Shapes of a and b that broadcast in the ways the kernels tell apart:
  -- same shape (flat), a row, a column, a scalar, a 3-d mix.
  local PAIRS = {
    {{50, 70}, {50, 70}}, {{50, 70}, {70}}, {{50, 70}, {50, 1}},
    {{50, 70}, {}}, {{6, 1, 9}, {5, 1}}, {{1000003}, {1000003}},
  }

  for _, b in ipairs(BINARY) do
    gpu_it(b[1] .. ' matches float64 with broadcasting', function()
      for _, p in ipairs(PAIRS) do
        local x = uniform(p[1], b[2], b[3])
        local y = uniform(p[2], b[4], b[5])
        local what = ('%s %s'):format(b[1], table.concat(p[2], 'x'))
        check(what, ELEMENTWISE, function(s, t) return s[b[1]](s, t) end,
          x, y)
        if b[1] ~= 'pow' then
          check(what .. ' reversed', ELEMENTWISE, function(s, t)
            return t[b[1]](t, s) end, x, y)
        end
      end
      local x = uniform({40, 30}, b[2], b[3])
      check(b[1] .. ' transposed', ELEMENTWISE, function(s)
        return s:transpose(1, 2)[b[1]](s:transpose(1, 2), s:transpose(1, 2))
      end, x)
      check(b[1] .. ' scalar', ELEMENTWISE, function(s)
        return s[b[1]](s, 1.5) end, x)
      check(b[1] .. ' in place', ELEMENTWISE, function(s)
        local c = s:clone()
        c[b[1] .. '_'](c, 1.25)
        return c
      end, x)
    end)
  end

  gpu_it('numbers on the left: 1 - x, 2 / x, 2 ^ x', function()
    local x = uniform({64, 33}, 0.5, 2)
    check('1 - x', ELEMENTWISE, function(t) return 1 - t end, x)
    check('2 / x', ELEMENTWISE, function(t) return 2 / t end, x)
    check('2 ^ x', ELEMENTWISE, function(t) return 2 ^ t end, x)
    check('x + 3', ELEMENTWISE, function(t) return t + 3 end, x)
  end)

  gpu_it('comparisons give the CPU uint8 results', function()
    local x = uniform({45, 31}, -1, 1)
    local y = uniform({31}, -1, 1)
    x[1][1] = 0 / 0
    for _, op in ipairs{'eq', 'ne', 'lt', 'le', 'gt', 'ge'} do
      check_same(op, function(s, t) return s[op](s, t) end, x, y)
      check_same(op .. ' 0', function(s) return s[op](s, 0) end, x)
    end
    check_same('maximum keeps NaN', function(s, t)
      return s:maximum(t) end, x, y)
  end)

  gpu_it('integer ops give the CPU results', function()
    for _, dt in ipairs{'int32', 'uint8'} do
      local a = ebl.randint(0, 200, {23, 19}, dt)
      local b = ebl.randint(0, 200, {19}, dt)
      for _, op in ipairs{'add', 'sub', 'mul', 'maximum', 'minimum', 'eq',
                          'lt', 'ge'} do
        check_same(dt .. ' ' .. op, function(s, t) return s[op](s, t) end,
          a, b)
      end
      check_same(dt .. ' neg', function(s) return s:neg() end, a)
      check_same(dt .. ' abs', function(s) return (s - 100):abs() end, a)
      check_same(dt .. ' clamp', function(s) return s:clamp(20.5, 150) end,
        a)
      check_same(dt .. ' relu', function(s) return (s - 100):relu() end, a)
      check_same(dt .. ' sum', function(s) return s:sum() end, a)
      check_same(dt .. ' + 7', function(s) return s + 7 end, a)
      check_same(dt .. ' / 2', function(s) return s / 2 end, a)
    end
  end)

  gpu_it('where and add_ with alpha (axpby) match float64', function()
    local a = uniform({37, 29}, -1, 1)
    local b = uniform({29}, -1, 1)
    check_same('where', function(s, t)
      return ebl.where(s:gt(t), s, t) end, a, b)
    check_same('where scalar', function(s) return ebl.where(s:gt(0), s, 0)
    end, a)
    check('add_ alpha', ELEMENTWISE, function(s, t)
      local c = s:clone()
      c:add_(t, -0.3)
      return c
    end, a, b)
    check('sub_ alpha', ELEMENTWISE, function(s, t)
      local c = s:clone()
      c:sub_(t, 2.5)
      return c
    end, a, b)
  end)
end)

describe('cuda reductions and softmax', function()
  local SHAPES = {{7, 11, 13}, {3, 70000}, {70000, 3}, {5000, 40},
    {40, 5000}, {1}, {64, 64, 64}}
  local OPS = {{'sum'}, {'mean'}, {'var'}, {'norm', 1}, {'norm', 2},
    {'norm', 3}, {'norm', math.huge}}

  for _, op in ipairs(OPS) do
    local name = op[1] .. (op[2] and ('(' .. op[2] .. ')') or '')
    gpu_it(name .. ' over each dim and all matches float64', function()
      for _, s in ipairs(SHAPES) do
        local x = uniform(s, -1, 1.5)
        local call = function(t, dim)
          if op[1] == 'norm' then return t:norm(op[2], dim) end
          return t[op[1]](t, dim)
        end
        if x:numel() > 1 or op[1] ~= 'var' then
          check(name .. ' all ' .. table.concat(s, 'x'), ELEMENTWISE, call,
            x)
        end
        for d = 1, #s do
          if s[d] > 1 or op[1] ~= 'var' then
            check(('%s dim %d of %s'):format(name, d, table.concat(s, 'x')),
              ELEMENTWISE, call, x, d)
          end
        end
      end
    end)
  end

  gpu_it('max, min, argmax and argmin give the CPU results', function()
    for _, s in ipairs(SHAPES) do
      local x = uniform(s, -1, 1)
      for _, op in ipairs{'max', 'min', 'argmax', 'argmin'} do
        check_same(op .. ' all', function(t) return t[op](t) end, x)
        for d = 1, #s do
          check_same(op .. ' dim ' .. d, function(t) return t[op](t, d) end,
            x)
        end
      end
    end
  end)

  gpu_it('the first extreme wins ties and NaN wins', function()
    local x = ebl.randint(0, 3, {300, 700}, 'float32')
    for _, op in ipairs{'argmax', 'argmin'} do
      check_same(op .. ' ties', function(t) return t[op](t) end, x)
      check_same(op .. ' ties dim 1', function(t) return t[op](t, 1) end, x)
      check_same(op .. ' ties dim 2', function(t) return t[op](t, 2) end, x)
    end
    x[5][9] = 0 / 0
    x[200][1] = 0 / 0
    for _, op in ipairs{'max', 'min', 'argmax', 'argmin'} do
      check_same(op .. ' NaN', function(t) return t[op](t) end, x)
      check_same(op .. ' NaN dim 2', function(t) return t[op](t, 2) end, x)
    end
  end)

  -- 2^22 + 3 elements: each thread of the full reduction's first level
  -- takes several elements, the last of them a partial share.
  gpu_it('reductions of many elements per thread match', function()
    local x = uniform({4194307}, -1, 1.5)
    for _, op in ipairs{'sum', 'mean', 'var'} do
      check(op .. ' of 2^22 + 3', ELEMENTWISE, function(t)
        return t[op](t) end, x)
    end
    check('norm(3) of 2^22 + 3', ELEMENTWISE, function(t)
      return t:norm(3) end, x)
    x[4000000] = 7
    x[4194300] = -7
    for _, op in ipairs{'max', 'min', 'argmax', 'argmin'} do
      check_same(op .. ' of 2^22 + 3', function(t) return t[op](t) end, x)
    end
  end)

  gpu_it('reductions are the same on every run', function()
    local x = uniform({1000, 3001}, -1, 1):cuda()
    local a, b = x:sum():item(), x:sum():item()
    assert.are.equal(a, b)
    same(x:sum(2), x:sum(2), 'rows')
  end)

  gpu_it('softmax and log_softmax match float64 along each dim', function()
    for _, s in ipairs{{7, 11, 13}, {300, 10}, {3, 5000}, {4000, 33}} do
      local x = uniform(s, -6, 6)
      for d = 1, #s do
        check('softmax dim ' .. d, ELEMENTWISE, function(t)
          return t:softmax(d) end, x)
        check('log_softmax dim ' .. d, ELEMENTWISE, function(t)
          return t:log_softmax(d) end, x)
      end
    end
  end)
end)

describe('cuda matrix products', function()
  gpu_it('matmul matches float64 on random shapes', function()
    for _ = 1, 12 do
      local m, k, n = math.random(1, 300), math.random(1, 700),
        math.random(1, 300)
      local a, b = uniform({m, k}, -1, 1), uniform({k, n}, -1, 1)
      check(('%dx%dx%d'):format(m, k, n), PRODUCT, ebl.matmul, a, b)
      check('transposed', PRODUCT, function(s, t)
        return ebl.matmul(t:transpose(1, 2), s:transpose(1, 2)) end, a, b)
    end
  end)

  gpu_it('batched, broadcast, vector and uneven batches', function()
    local a = uniform({4, 3, 17, 23}, -1, 1)
    local b = uniform({23, 9}, -1, 1)
    local c = uniform({3, 23, 9}, -1, 1)
    check('batch x matrix', PRODUCT, ebl.matmul, a, b)
    check('broadcast batch', PRODUCT, ebl.matmul, a, c)
    check('vector', PRODUCT, function(s, t)
      return ebl.matmul(s:select(1, 1):select(1, 1):select(1, 1), t) end,
      a, b)
    check('matrix x vector', PRODUCT, function(s, t)
      return ebl.matmul(s, t:select(2, 1)) end, a, b)
    -- Batch dims (4, 3) viewed from (3, 4): offsets that do not step
    -- evenly, which go through arrays of pointers.
    local d = uniform({3, 4, 17, 23}, -1, 1)
    check('uneven batch', PRODUCT, function(s, t)
      return ebl.matmul(s:transpose(1, 2), t) end, d, c)
  end)

  gpu_it('float64 products match the CPU closely', function()
    local a = uniform({65, 129}, -1, 1):double()
    local b = uniform({129, 31}, -1, 1):double()
    near(ebl.matmul(a:cuda(), b:cuda()), ebl.matmul(a, b), 1e-13, 'dgemm')
  end)

  gpu_it('float32 is full float32 unless TF32 is allowed', function()
    local a, b = uniform({256, 4096}, -1, 1), uniform({4096, 256}, -1, 1)
    check('k = 4096 without TF32', PRODUCT, ebl.matmul, a, b)
    local was = ebl.cuda.allow_tf32(true)
    assert.is_false(was)
    local got = ebl.matmul(a:cuda(), b:cuda())
    assert.is_true(ebl.cuda.allow_tf32(false))
    assert(rel_err(got, ebl.matmul(a:double(), b:double())) < 1e-2)
  end)
end)

describe('cuda convolutions and pooling', function()
  -- {n, c_in, h, w, c_out, k, options}
  local CONVS = {
    {2, 3, 9, 9, 4, 3, {padding = 1}},
    {3, 4, 12, 10, 6, 3, {stride = 2, padding = 1}},
    {2, 4, 11, 11, 4, 3, {dilation = 2, groups = 2}},
    {1, 6, 7, 8, 3, 1, {}},
    {4, 2, 16, 16, 8, 5, {stride = {2, 1}, padding = {2, 1}}},
  }

  gpu_it('conv2d and its VJPs match float64', function()
    for i, c in ipairs(CONVS) do
      local x = uniform({c[1], c[2], c[3], c[4]}, -1, 1)
      local groups = c[7].groups or 1
      local w = uniform({c[5], c[2] // groups, c[6], c[6]}, -1, 1)
      local bias = uniform({c[5]}, -1, 1)
      local what = 'conv ' .. i
      check(what, PRODUCT, function(s, t, u)
        return ebl.conv2d(s, t, u, c[7]) end, x, w, bias)
      local y = ebl.conv2d(x, w, nil, c[7])
      local dy = uniform(y:shape(), -1, 1)
      check(what .. ' input vjp', PRODUCT, function(s, t)
        return ebl.conv2d_input_vjp(s, t, x:shape(), c[7]) end, dy, w)
      check(what .. ' weight vjp', PRODUCT, function(s, t)
        return ebl.conv2d_weight_vjp(s, t, w:shape(), c[7]) end, x, dy)
      check(what .. ' bias vjp', ELEMENTWISE, ebl.conv2d_bias_vjp, dy)
    end
  end)

  gpu_it('conv_transpose2d and its VJPs match float64', function()
    for i, c in ipairs(CONVS) do
      local opts = {}
      for k, v in pairs(c[7]) do opts[k] = v end
      local groups = opts.groups or 1
      local x = uniform({c[1], c[5], c[3], c[4]}, -1, 1)
      local w = uniform({c[5], c[2] // groups, c[6], c[6]}, -1, 1)
      local bias = uniform({c[2]}, -1, 1)
      if opts.stride == 2 then opts.output_padding = 1 end
      local what = 'conv_transpose ' .. i
      check(what, PRODUCT, function(s, t, u)
        return ebl.conv_transpose2d(s, t, u, opts) end, x, w, bias)
      local y = ebl.conv_transpose2d(x, w, nil, opts)
      local dy = uniform(y:shape(), -1, 1)
      check(what .. ' input vjp', PRODUCT, function(s, t)
        return ebl.conv_transpose2d_input_vjp(s, t, x:shape(), opts) end,
        dy, w)
      check(what .. ' weight vjp', PRODUCT, function(s, t)
        return ebl.conv_transpose2d_weight_vjp(s, t, w:shape(), opts) end,
        x, dy)
    end
  end)

  gpu_it('float64 convolutions match the CPU closely', function()
    local x = uniform({2, 3, 10, 10}, -1, 1):double()
    local w = uniform({5, 3, 3, 3}, -1, 1):double()
    near(ebl.conv2d(x:cuda(), w:cuda(), nil, {padding = 1}),
      ebl.conv2d(x, w, nil, {padding = 1}), 1e-12, 'conv2d f64')
  end)

  gpu_it('max_pool2d keeps the CPU winners and routes dy back', function()
    for _, p in ipairs{{2}, {3, 2, 1}, {3, 1, 1}, {2, 1}} do
      local x = ebl.randint(0, 4, {3, 4, 9, 11}, 'float32')
      local yg, ig = ebl.max_pool2d(x:cuda(), table.unpack(p))
      local yc, ic = ebl.max_pool2d(x, table.unpack(p))
      same(yg, yc, 'max_pool2d values')
      same(ig, ic, 'max_pool2d indices')
      local dy = uniform(yc:shape(), -1, 1)
      check('max_pool2d vjp', ELEMENTWISE, function(s)
        return ebl.max_pool2d_vjp(s, s:device() == 'cuda' and ig or ic, x,
          table.unpack(p)) end, dy)
    end
  end)

  gpu_it('avg_pool2d and its VJP match float64', function()
    for _, p in ipairs{{2}, {3, 2, 1}, {3, 1, 1}} do
      local x = uniform({3, 4, 9, 11}, -1, 1)
      check('avg_pool2d', ELEMENTWISE, function(s)
        return ebl.avg_pool2d(s, table.unpack(p)) end, x)
      local dy = uniform(ebl.avg_pool2d(x, table.unpack(p)):shape(), -1, 1)
      check('avg_pool2d vjp', ELEMENTWISE, function(s)
        return ebl.avg_pool2d_vjp(s, x, table.unpack(p)) end, dy)
    end
  end)
end)

describe('cuda losses', function()
  gpu_it('mse_loss and its gradient match float64', function()
    local x, t = uniform({70, 13}, -2, 2), uniform({70, 13}, -2, 2)
    local lg, gg = ebl.mse_loss_grad(x:cuda(), t:cuda())
    local lr, gr = ebl.mse_loss_grad(x:double(), t:double())
    assert(math.abs(lg - lr) <= ELEMENTWISE * math.abs(lr))
    near(gg, gr, ELEMENTWISE, 'mse grad')
  end)

  gpu_it('cross_entropy with labels and soft targets matches', function()
    for _, k in ipairs{10, 100, 3000} do
      local x = uniform({50, k}, -5, 5)
      local labels = ebl.randint(0, k, {50}, 'int32')
      local soft = ebl.rand{50, k}
      for _, t in ipairs{labels, soft} do
        local lg, gg = ebl.cross_entropy_grad(x:cuda(), t:cuda())
        local tr = t:dtype() == 'int32' and t or t:double()
        local lr, gr = ebl.cross_entropy_grad(x:double(), tr)
        assert(math.abs(lg - lr) <= ELEMENTWISE * math.abs(lr),
          ('loss %.9g vs %.9g'):format(lg, lr))
        near(gg, gr, ELEMENTWISE, 'cross_entropy grad')
      end
    end
  end)
end)

describe('cuda random numbers', function()
  gpu_it('draw the CPU numbers for a seed', function()
    local draws = {
      {'rand', function(o) return ebl.rand({1001, 7}, o) end},
      {'rand f64', function(o)
        o = o or {}
        o.dtype = 'float64'
        return ebl.rand({999}, o) end},
      {'randint', function(o) return ebl.randint(-5, 1000, {4097}, o) end},
    }
    for _, d in ipairs(draws) do
      ebl.manual_seed(7)
      ebl.rand{3}
      local g = d[2]({device = 'cuda'})
      ebl.manual_seed(7)
      ebl.rand{3}
      same(g, d[2](), d[1])
    end
    ebl.manual_seed(11)
    local g = ebl.randn({3, 1001}, {device = 'cuda'})
    ebl.manual_seed(11)
    local c = ebl.randn{3, 1001}
    near(g, c, 1e-7, 'randn float32')
    ebl.manual_seed(11)
    g = ebl.randn({1001}, {device = 'cuda', dtype = 'float64'})
    ebl.manual_seed(11)
    near(g, ebl.randn({1001}, 'float64'), 1e-14, 'randn float64')
  end)
end)

describe('cuda errors and memory', function()
  gpu_it('mixing devices in one op is an error naming both', function()
    local a, b = ebl.ones(3), ebl.ones(3):cuda()
    local ok, err = pcall(function() return a + b end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find('add: tensors on cpu and cuda', 1,
      true), tostring(err))
    ok, err = pcall(ebl.matmul, ebl.ones{2, 2}, ebl.ones{2, 2}:cuda())
    assert.is_false(ok)
    assert.truthy(tostring(err):find('cpu and cuda', 1, true))
  end)

  gpu_it('out of memory is an error naming the size', function()
    local ok, err = pcall(ebl.empty, {1 << 40},
      {dtype = 'float64', device = 'cuda'})
    assert.is_false(ok)
    assert.truthy(tostring(err):find(
      'cuda: out of memory allocating 8.00 TiB', 1, true), tostring(err))
    local x = ebl.ones(10):cuda()
    assert.are.equal(10, x:sum():item())
  end)

  gpu_it('the allocator reuses blocks and reports its bytes', function()
    collectgarbage()
    ebl.cuda.empty_cache()
    local base = ebl.cuda.memory()
    local sizes = {1, 7, 128, 1000, 4096, 65537, 1 << 20, 3 << 20, 1 << 24}
    local function round()
      local live = {}
      for i, n in ipairs(sizes) do
        live[i] = ebl.empty({n}, {device = 'cuda'})
        live[i]:fill(i)
      end
      for i, n in ipairs(sizes) do
        assert.are.equal(i * n, live[i]:sum():item())
      end
      local during = ebl.cuda.memory()
      for i = 1, #live do live[i] = nil end
      collectgarbage()
      collectgarbage()
      return during
    end
    local during = round()
    local after_first = ebl.cuda.memory()
    assert.is_true(during.in_use > base.in_use)
    assert.is_true(during.peak >= during.in_use)
    assert.is_true(after_first.cached > base.cached)
    for _ = 1, 20 do round() end
    local steady = ebl.cuda.memory()
    assert.are.equal(after_first.device_mallocs, steady.device_mallocs)
    assert.are.equal(base.in_use, steady.in_use)
    ebl.cuda.empty_cache()
    assert.are.equal(0, ebl.cuda.memory().cached)
  end)

  gpu_it('set_default_device puts new tensors and layers there',
    function()
      ebl.set_default_device('cuda')
      local ok, err = pcall(function()
        assert.are.equal('cuda', ebl.zeros(3):device())
        assert.are.equal('cuda', ebl.tensor{1, 2}:device())
        assert.are.equal('cuda', ebl.nn.linear(3, 2).weight:device())
      end)
      ebl.set_default_device('cpu')
      assert(ok, err)
      assert.are.equal('cpu', ebl.zeros(3):device())
    end)
end)

describe('the energy engine on the GPU', function()
  -- x (20) -> h1 (32) -> h2 (16) -> y (5): the same weights on a device.
  -- dtype: of the weights (float32 unless given).
  local function mlp(energy, device, dtype)
    ebl.set_default_device(device)
    ebl.manual_seed(21)
    local g = ebl.graph()
    local x = g:node{name = 'x', shape = {20}, role = 'input'}
    -- EP's activations belong to the nodes, PC's to the edges.
    local ep = energy == 'ep'
    local act = ep and 'sigmoid' or nil
    local h1 = g:node{name = 'h1', shape = {32}, activation = act}
    local h2 = g:node{name = 'h2', shape = {16}, activation = act}
    local y = g:node{name = 'y', shape = {5}, role = 'output',
      activation = act}
    local function layer(n_in, n_out)
      local lin = ebl.nn.linear(n_in, n_out, {dtype = dtype})
      return ep and lin or ebl.nn.chain(lin, ebl.nn.tanh())
    end
    g:edge(x, h1, layer(20, 32))
    g:edge(h1, h2, layer(32, 16))
    g:edge(h2, y, ebl.nn.linear(16, 5, {dtype = dtype}))
    local m = ebl.model(g, {energy = energy, loss = ep and 'mse' or 'ce'})
    ebl.set_default_device('cpu')
    return m
  end

  for _, energy in ipairs{'pc', 'bipc', 'bipc_sq'} do
    for _, optim in ipairs{'sgd', 'momentum', 'adam'} do
      gpu_it(('%s with %s: states and energy equal the CPU'):format(energy,
        optim), function()
        local mc, mg = mlp(energy, 'cpu'), mlp(energy, 'cuda')
        ebl.manual_seed(5)
        local x = ebl.randn{64, 20}
        local labels = ebl.randint(0, 5, {64}, 'int32')
        local opts = {steps = 20, state_lr = 0.05, state_optim = optim}
        local rc = mc:infer(x, labels, opts)
        local rg = mg:infer(x:cuda(), labels:cuda(), opts)
        assert(math.abs(rc - rg) <= 1e-5 * math.abs(rc),
          ('energy %.9g vs %.9g'):format(rg, rc))
        for _, name in ipairs{'h1', 'h2', 'y'} do
          near(mg:state(name), mc:state(name), 1e-5, 'state ' .. name)
        end
        local gc, gg = mc:grads(), mg:grads()
        for i = 1, #gc do near(gg[i], gc[i], 1e-4, 'grad ' .. i) end
      end)
    end
  end

  -- The loop's check runs on the device and the host reads it every
  -- check_every steps: the loop must end where the CPU's ends.
  -- In float64, so that where the loop stops cannot hinge on the last
  -- bits in which the devices' sums differ.
  local function batch(energy)
    ebl.manual_seed(5)
    local x = ebl.randn({64, 20}, 'float64')
    if energy == 'ep' then return x, ebl.rand({64, 5}, 'float64') end
    return x, ebl.randint(0, 5, {64}, 'int32')
  end

  local function same_run(energy, opts)
    local mc = mlp(energy, 'cpu', 'float64')
    local mg = mlp(energy, 'cuda', 'float64')
    local x, labels = batch(energy)
    local ec, kc, tc = mc:infer(x, labels, opts)
    local eg, kg, tg = mg:infer(x:cuda(), labels:cuda(), opts)
    assert.are.equal(kc, kg)
    assert.are.equal(#tc, #tg)
    for i = 1, #tc do
      assert(math.abs(tc[i] - tg[i]) <= 1e-5 * math.abs(tc[i]),
        ('trace %d: %.9g vs %.9g'):format(i, tg[i], tc[i]))
    end
    assert(math.abs(ec - eg) <= 1e-5 * math.abs(ec))
    for _, name in ipairs{'h1', 'h2', 'y'} do
      near(mg:state(name), mc:state(name), 1e-5, 'state ' .. name)
    end
    return kc
  end

  for _, every in ipairs{1, 3, 10, 500} do
    gpu_it(('the tolerance ends the loop at the CPU step (check_every %d)')
      :format(every), function()
      for _, energy in ipairs{'pc', 'ep'} do
        local k = same_run(energy, {steps = 300, state_lr = 0.05,
          tol = 1e-4, check_every = every})
        assert(k > 1 and k < 300, energy .. ' stopped at step ' .. k)
      end
    end)
  end

  gpu_it('backtracking (checked on the host) gives the CPU\'s steps',
    function()
      same_run('pc', {steps = 40, state_lr = 3, backtrack = true,
        tol = 0, check_every = 7})
    end)

  gpu_it('the step limit ends the loop on the device as on the CPU',
    function()
      assert.are.equal(7, same_run('pc', {steps = 7, state_lr = 0.05,
        tol = 0, check_every = 3}))
      assert.are.equal(0, same_run('pc', {steps = 0, check_every = 3}))
    end)

  gpu_it('a state that blows up is reported at the same step', function()
    local msgs = {}
    for _, device in ipairs{'cpu', 'cuda'} do
      local m = mlp('pc', device, 'float64')
      local x, labels = batch()
      local ok, err = pcall(m.infer, m, x:to(device), labels:to(device),
        {steps = 50, state_lr = 1e6, check_every = 20})
      assert.is_false(ok)
      msgs[#msgs + 1] = tostring(err):match('NaN or Inf at step %d+')
    end
    assert.is_not_nil(msgs[1])
    assert.are.equal(msgs[1], msgs[2])
  end)

  gpu_it('check_every must be at least 1', function()
    local m = mlp('pc', 'cuda', 'float64')
    local x, labels = batch()
    assert.has_error(function()
      m:infer(x:cuda(), labels:cuda(), {check_every = 0})
    end, 'infer: check_every must be >= 1, got 0')
  end)

  -- The trainer moves each batch to the model's device; Adam's moments
  -- live beside the weights.
  gpu_it('ebl.train on the GPU learns as on the CPU', function()
    ebl.manual_seed(8)
    local n = 96
    local labels = ebl.randint(0, 3, {n}, 'int32')
    local x = (ebl.rand{n, 16} * 40):to('uint8')
    local ds = ebl.data.dataset(x:reshape{n, 1, 4, 4}, labels)
    local params = {}
    for _, device in ipairs{'cpu', 'cuda'} do
      ebl.set_default_device(device)
      ebl.manual_seed(3)
      local m = ebl.model(ebl.models.mlp{sizes = {16, 12, 3}},
        {energy = 'pc'})
      ebl.set_default_device('cpu')
      local s = ebl.train(m, ds, {epochs = 2, batch = 32, steps = 8,
        state_lr = 0.1, lr = 0.01, seed = 3, quiet = true, test = ds})
      assert(s, 'a summary')
      params[device] = m:params()
      for _, p in ipairs(params[device]) do
        assert.are.equal(device, p:device())
      end
    end
    for i = 1, #params.cpu do
      near(params.cuda[i], params.cpu[i], 1e-4, 'param ' .. i)
    end
  end)

  -- A checkpoint holds tensors on the host; loading it into a model on
  -- the GPU puts weights and the optimiser's moments back there.
  gpu_it('a checkpoint of a GPU model resumes on the GPU', function()
    local function gpu_mlp()
      ebl.set_default_device('cuda')
      ebl.manual_seed(4)
      local m = ebl.model(ebl.models.mlp{sizes = {4, 8, 3}},
        {energy = 'pc'})
      ebl.set_default_device('cpu')
      return m
    end
    ebl.manual_seed(6)
    local x = ebl.randn{5, 4}:cuda()
    local y = ebl.randint(0, 3, {5}, 'int32'):cuda()
    local m, opt = gpu_mlp(), ebl.optim.adam{lr = 1e-2}
    for _ = 1, 2 do m:infer(x, y, {steps = 5}) m:learn(opt) end
    local path = os.tmpname()
    ebl.checkpoint.save(path, m, opt, {epoch = 2})
    local m2, opt2 = gpu_mlp(), ebl.optim.adam{lr = 1e-2}
    ebl.checkpoint.load(path, m2, opt2)
    os.remove(path)
    for _, mm in ipairs{m, m2} do
      mm:infer(x, y, {steps = 5})
    end
    m:learn(opt)
    m2:learn(opt2)
    local p1, p2 = m:params(), m2:params()
    for i = 1, #p1 do
      assert.are.equal('cuda', p2[i]:device())
      near(p2[i], p1[i], 1e-6, 'param ' .. i)
    end
  end)
end)
