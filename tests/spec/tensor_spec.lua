-- The Lua binding of tensors: creation, printing, views, rows,
-- metamethods, arithmetic, layers, error messages, memory pacing and
-- help texts.
local ebl = rawget(_G, 'ebl') or require 'ebl'

-- Asserts that fn(...) raises an error containing text (plain text).
local function fails(text, fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, 'expected an error containing: ' .. text)
  err = tostring(err)
  assert(err:find(text, 1, true),
    ('error %q does not contain %q'):format(err, text))
end

-- Asserts |a - b| <= tol elementwise over nested tables or numbers.
local function close(a, b, tol, where)
  tol = tol or 1e-6
  where = where or ''
  if type(b) == 'table' then
    assert.are.equal(#b, #a, 'length at ' .. where)
    for i = 1, #b do close(a[i], b[i], tol, where .. '[' .. i .. ']') end
  else
    assert(math.abs(a - b) <= tol * math.max(1, math.abs(b)),
      ('%s: %.9g differs from %.9g'):format(where, a, b))
  end
end

-- The printed form at a fixed width, independent of the terminal.
local function fmt(t, opts)
  opts = opts or {}
  opts.linewidth = opts.linewidth or 80
  return t:format(opts)
end

describe('creation', function()
  it('reads nested tables, row-major, float32 by default', function()
    local t = ebl.tensor{{1, 2, 3}, {4, 5, 6}}
    assert.are.same({2, 3}, t:shape())
    assert.are.equal('float32', t:dtype())
    assert.are.equal('cpu', t:device())
    assert.are.same({{1, 2, 3}, {4, 5, 6}}, t:totable())
    assert.are.equal(6, t:numel())
    assert.are.equal(2, t:dim())
  end)

  it('takes a dtype as a name or an option', function()
    local a = ebl.tensor({1, 2}, 'int32')
    local b = ebl.tensor({1, 2}, {dtype = 'float64'})
    assert.are.equal('int32', a:dtype())
    assert.are.equal('float64', b:dtype())
    assert.are.equal(math.type(a:totable()[1]), 'integer')
    assert.are.equal(math.type(b:totable()[1]), 'float')
    assert.are.equal('uint8', ebl.tensor({255}, 'byte'):dtype())
  end)

  it('makes 0-dim tensors from numbers and empty ones from {}',
    function()
      local s = ebl.tensor(2.5)
      assert.are.same({}, s:shape())
      assert.are.equal(2.5, s:item())
      assert.are.equal(2.5, s:totable())
      local e = ebl.tensor{}
      assert.are.same({0}, e:shape())
      assert.are.same({2, 0}, ebl.tensor{{}, {}}:shape())
    end)

  it('copies a tensor given to ebl.tensor', function()
    local a = ebl.tensor{1, 2}
    local b = ebl.tensor(a)
    b[1] = 9
    assert.are.same({1, 2}, a:totable())
    assert.is_false(a:shares_storage(b))
    assert.are.equal('float64', ebl.tensor(a, 'float64'):dtype())
  end)

  it('makes zeros, ones, full and empty from tables or sizes', function()
    assert.are.same({{0, 0, 0}, {0, 0, 0}}, ebl.zeros{2, 3}:totable())
    assert.are.same({{1, 1}}, ebl.ones(1, 2):totable())
    assert.are.same({2, 3, 4}, ebl.empty(2, 3, 4):shape())
    assert.are.same({7, 7}, ebl.full({2}, 7):totable())
    assert.are.equal('int32', ebl.zeros(2, {dtype = 'int32'}):dtype())
    assert.are.equal('float64', ebl.ones({2}, 'float64'):dtype())
    assert.are.same({}, ebl.zeros{}:shape())
    assert.are.same({0, 3}, ebl.zeros(0, 3):shape())
  end)

  it('makes *_like tensors with the shape and dtype of another',
    function()
      local x = ebl.ones({2, 3}, 'float64')
      local z = ebl.zeros_like(x)
      assert.are.same({2, 3}, z:shape())
      assert.are.equal('float64', z:dtype())
      assert.are.equal(0, z:sum():item())
      assert.are.equal(6, ebl.ones_like(x, 'int32'):sum():item())
      assert.are.same({2, 3}, ebl.empty_like(x):shape())
    end)

  it('makes ranges, linspace and eye', function()
    assert.are.same({0, 1, 2, 3, 4}, ebl.arange(5):totable())
    assert.are.same({2, 3, 4}, ebl.arange(2, 5):totable())
    assert.are.same({1, 1.25, 1.5, 1.75}, ebl.arange(1, 2, 0.25):totable())
    assert.are.same({5, 3, 1}, ebl.arange(5, 0, -2):totable())
    assert.are.equal('int32', ebl.arange(3, {dtype = 'int32'}):dtype())
    close(ebl.linspace(0, 1, 5):totable(), {0, 0.25, 0.5, 0.75, 1})
    assert.are.same({{1, 0, 0}, {0, 1, 0}}, ebl.eye(2, 3):totable())
    assert.are.same({{1, 0}, {0, 1}}, ebl.eye(2):totable())
  end)

  it('draws repeatable random numbers after manual_seed', function()
    ebl.manual_seed(7)
    local a = ebl.rand(100):totable()
    ebl.manual_seed(7)
    local b = ebl.rand(100):totable()
    assert.are.same(a, b)
    for _, v in ipairs(a) do assert(v >= 0 and v < 1) end
    local n = ebl.randn(10000, {dtype = 'float64'})
    assert(math.abs(n:mean():item()) < 0.05, tostring(n:mean()))
    assert(math.abs(n:var():item() - 1) < 0.05, tostring(n:var()))
  end)

  it('draws integers in lo..hi-1 and permutations of 1..n', function()
    ebl.manual_seed(1)
    local r = ebl.randint(3, 6, {1000})
    assert.are.equal('int32', r:dtype())
    assert.are.equal(3, r:min():item())
    assert.are.equal(5, r:max():item())
    local p = ebl.randperm(50):totable()
    table.sort(p)
    for i = 1, 50 do assert.are.equal(i, p[i]) end
  end)
end)

describe('metadata', function()
  it('gives sizes by 1-based and negative dims, and strides', function()
    local t = ebl.zeros(2, 3, 4)
    assert.are.equal(2, t:size(1))
    assert.are.equal(4, t:size(3))
    assert.are.equal(4, t:size(-1))
    assert.are.equal(2, t:size(-3))
    assert.are.same({2, 3, 4}, t:size())
    assert.are.same({12, 4, 1}, t:stride())
    assert.are.equal(1, t:stride(3))
    assert.are.equal(2, #t)
    assert.is_true(t:is_contiguous())
  end)
end)

describe('printing', function()
  it('writes small tensors in full with a common format', function()
    assert.are.equal(
      'tensor([[1.0000, 2.0000],\n' ..
      '        [3.0000, 4.0000]], shape=2x2, float32, cpu)',
      fmt(ebl.tensor{{1, 2}, {3, 4}}))
    assert.are.equal('tensor([-1.0000,  0.5000], shape=2, float32, cpu)',
      fmt(ebl.tensor{-1, 0.5}))
    assert.are.equal('tensor([ 1, 20, -3], shape=3, int32, cpu)',
      fmt(ebl.tensor({1, 20, -3}, 'int32')))
    assert.are.equal('tensor(2.5000, shape=scalar, float64, cpu)',
      fmt(ebl.tensor(2.5, 'float64')))
    assert.are.equal('tensor([], shape=2x0, float32, cpu)',
      fmt(ebl.zeros(2, 0)))
  end)

  it('separates the blocks of 3-dim tensors by a blank line', function()
    assert.are.equal(
      'tensor([[[0, 1],\n' ..
      '         [2, 3]],\n' ..
      '\n' ..
      '        [[4, 5],\n' ..
      '         [6, 7]]], shape=2x2x2, uint8, cpu)',
      fmt(ebl.arange(8, {dtype = 'uint8'}):reshape(2, 2, 2)))
  end)

  it('switches to scientific notation for a wide range', function()
    assert.are.equal(
      'tensor([1.0000e-05, 1.0000e+00], shape=2, float32, cpu)',
      fmt(ebl.tensor{1e-5, 1}))
    assert.are.equal(
      'tensor([1.2346e+08, 1.0000e+00], shape=2, float64, cpu)',
      fmt(ebl.tensor({123456789, 1}, 'float64')))
    assert.are.equal('tensor([ nan,  inf, -inf], shape=3, float32, cpu)',
      fmt(ebl.tensor{0 / 0, math.huge, -math.huge}):gsub('%-nan', ' nan'))
  end)

  it('honours precision and sci_mode', function()
    assert.are.equal('tensor([0.33, 1.00], shape=2, float32, cpu)',
      fmt(ebl.tensor{1 / 3, 1}, {precision = 2}))
    assert.are.equal('tensor([1.0e+00, 2.0e+00], shape=2, float32, cpu)',
      fmt(ebl.tensor{1, 2}, {precision = 1, sci_mode = true}))
  end)

  it('summarises big tensors with edge items and "..."', function()
    assert.are.equal(
      'tensor([   0.0000,    1.0000,    2.0000, ..., 1997.0000, ' ..
      '1998.0000, 1999.0000],\n' ..
      '       shape=2000, float32, cpu)',
      fmt(ebl.arange(2000)))
    local s = fmt(ebl.arange(4000, {dtype = 'int32'}):reshape(100, 40))
    assert.are.equal(
      'tensor([[   0,    1,    2, ...,   37,   38,   39],\n' ..
      '        [  40,   41,   42, ...,   77,   78,   79],\n' ..
      '        [  80,   81,   82, ...,  117,  118,  119],\n' ..
      '        ...,\n' ..
      '        [3880, 3881, 3882, ..., 3917, 3918, 3919],\n' ..
      '        [3920, 3921, 3922, ..., 3957, 3958, 3959],\n' ..
      '        [3960, 3961, 3962, ..., 3997, 3998, 3999]], ' ..
      'shape=100x40, int32, cpu)', s)
  end)

  it('wraps long rows at the line width', function()
    local s = fmt(ebl.arange(12, {dtype = 'int32'}), {linewidth = 30})
    assert.are.equal(
      'tensor([ 0,  1,  2,  3,  4,\n' ..
      '         5,  6,  7,  8,  9,\n' ..
      '        10, 11],\n' ..
      '       shape=12, int32, cpu)', s)
    for line in s:gmatch('[^\n]+') do assert(#line <= 30, line) end
  end)

  it('prints everything on request', function()
    local s = fmt(ebl.arange(2000), {full = true, linewidth = 100000})
    assert.is_nil(s:find('...', 1, true))
    assert.truthy(s:find('1000.0000', 1, true))
    local old = ebl.print_options()
    ebl.print_options{threshold = math.huge}
    assert.is_nil(tostring(ebl.arange(2000)):find('...', 1, true))
    assert.are.equal(math.huge, ebl.print_options().threshold)
    ebl.print_options('default')
    assert.truthy(tostring(ebl.arange(2000)):find('...', 1, true))
    assert.are.same(old, ebl.print_options())
  end)

  it('prints through the global print', function()
    local got
    local print0 = print
    _G.print = function(s) got = s end
    ebl.tensor{1}:print{linewidth = 80}
    _G.print = print0
    assert.are.equal('tensor([1.0000], shape=1, float32, cpu)', got)
  end)

  it('gives tostring and the same text for views', function()
    local t = ebl.tensor{{1, 2}, {3, 4}}
    assert.truthy(tostring(t):find('shape=2x2', 1, true))
    assert.are.equal(
      'tensor([[1.0000, 3.0000],\n' ..
      '        [2.0000, 4.0000]], shape=2x2, float32, cpu)',
      fmt(t:transpose()))
  end)
end)

describe('views', function()
  it('share storage with the tensor they come from', function()
    local t = ebl.zeros(2, 3)
    local views = {
      t:reshape(3, 2), t:view(6), t:transpose(), t:narrow(2, 2, 2),
      t:select(1, 2), t:unsqueeze(1), t:unsqueeze(1):squeeze(),
      t:flatten(), t:permute(2, 1), t[1], t:reshape{-1},
      t:narrow(1, 1, 1):expand(4, 3),
    }
    for i, v in ipairs(views) do
      assert.is_true(v:shares_storage(t), 'view ' .. i)
    end
    t:view(6):copy(ebl.arange(6))
    assert.are.same({{0, 1, 2}, {3, 4, 5}}, t:totable())
    t:transpose()[3][2] = 50        -- element (2, 3) of t
    t:narrow(2, 1, 1):fill(-1)      -- column 1
    t:select(1, 1):mul_(10)         -- row 1
    assert.are.same({{-10, 10, 20}, {-1, 4, 50}}, t:totable())
  end)

  it('follow 1-based dims and indices', function()
    local t = ebl.arange(24):reshape(2, 3, 4)
    assert.are.same({2, 4, 3}, t:transpose(2, 3):shape())
    assert.are.same({4, 2, 3}, t:permute(3, 1, 2):shape())
    assert.are.same({4, 2, 3}, t:permute{3, 1, 2}:shape())
    assert.are.same({12, 13, 14, 15}, t:select(1, 2):select(1, 1):totable())
    assert.are.same({3, 7, 11}, t[1]:select(2, -1):totable())
    assert.are.same({{4, 5, 6, 7}}, t[1]:narrow(1, 2, 1):totable())
    assert.are.same({2, 1, 3, 4}, t:unsqueeze(2):shape())
    assert.are.same({2, 3, 4, 1}, t:unsqueeze(-1):shape())
    assert.are.same({2, 12}, t:flatten(2):shape())
    assert.are.same({6, 4}, t:flatten(1, 2):shape())
    assert.are.same({1, 3}, ebl.zeros(1, 3, 1):squeeze(3):shape())
    assert.are.same({3}, ebl.zeros(1, 3, 1):squeeze():shape())
    assert.are.same({4, 3}, ebl.zeros(3):expand(4, 3):shape())
    assert.are.same({0, 3}, ebl.zeros(3):expand(0, -1):shape())
  end)

  it('copy when reshape cannot make a view; view refuses', function()
    local t = ebl.arange(6):reshape(2, 3):transpose()
    local r = t:reshape(6)
    assert.is_false(r:shares_storage(t))
    assert.are.same({0, 3, 1, 4, 2, 5}, r:totable())
    fails("calling 'view' on bad self (view needs a contiguous tensor",
      function() return t:view(6) end)
    local c = t:contiguous()
    assert.is_true(c:is_contiguous())
    assert.is_false(c:shares_storage(t))
    local same = c:contiguous()
    assert.is_true(same:shares_storage(c))
  end)

  it('clone, copy with broadcasting and casts', function()
    local t = ebl.tensor{{1.5, -2.5}}
    local c = t:clone()
    c:fill(0)
    assert.are.same({{1.5, -2.5}}, t:totable())
    local d = ebl.zeros(3, 2):copy(t)
    assert.are.same({{1.5, -2.5}, {1.5, -2.5}, {1.5, -2.5}}, d:totable())
    assert.are.same({{1, -2}}, t:int():totable())
    assert.are.equal('float64', t:double():dtype())
    assert.are.equal('uint8', ebl.tensor{1}:byte():dtype())
    assert.are.equal('float32', t:int():float():dtype())
    assert.are.equal('float64', t:to('float64'):dtype())
    assert.are.equal('float64', t:to{dtype = 'float64'}:dtype())
    assert.is_true(t:to('cpu'):shares_storage(t))
    assert.is_true(t:float():shares_storage(t))
  end)
end)

describe('rows', function()
  it('t[i] is a view of row i; 1-D rows are numbers', function()
    local t = ebl.tensor{{1, 2}, {3, 4}, {5, 6}}
    assert.are.same({3, 4}, t[2]:totable())
    assert.are.same({5, 6}, t[-1]:totable())
    assert.are.equal(4, t[2][2])
    assert.are.equal(5, t[-1][-2])
    assert.are.equal(3, #t)
    assert.are.equal('number', type(ebl.tensor{7}[1]))
    assert.are.equal(7, ebl.tensor({7}, 'int32')[1])
    assert.are.equal('integer', math.type(ebl.tensor({7}, 'int32')[1]))
    assert.are.equal('function', type(t.sum))
    assert.is_nil(t.no_such_method)
  end)

  it('t[i] = v fills or copies into row i', function()
    local t = ebl.zeros(3, 2)
    t[1] = 5
    t[2] = ebl.tensor{1, 2}
    t[-1] = ebl.tensor{9}
    t[2][1] = -1
    assert.are.same({{5, 5}, {-1, 2}, {9, 9}}, t:totable())
    local v = ebl.zeros(3)
    v[3] = 4
    assert.are.same({0, 0, 4}, v:totable())
  end)

  it('rejects bad rows and fields', function()
    local t = ebl.zeros(3, 2)
    fails('index must be in 1..3 or -3..-1, got 4', function()
      return t[4]
    end)
    fails('index must be in 1..3 or -3..-1, got 0', function()
      t[0] = 1
    end)
    fails('index must be an integer, got 1.5', function() return t[1.5] end)
    fails('number or ebl.Tensor expected, got string', function()
      t[1] = 'x'
    end)
    fails("cannot set field 'foo' of an ebl.Tensor", function()
      t.foo = 1
    end)
    fails('attempt to index a 0-dim tensor', function()
      return ebl.tensor(1)[1]
    end)
    fails('attempt to get the length of a 0-dim tensor', function()
      return #ebl.tensor(1)
    end)
    fails('copy: cannot broadcast 3x1 to 2', function()
      t[1] = ebl.zeros(3, 1)
    end)
  end)
end)

describe('metamethods', function()
  it('compute elementwise with numbers on either side', function()
    local a = ebl.tensor{1, 2, 4}
    local b = ebl.tensor{2, 2, 2}
    assert.are.same({3, 4, 6}, (a + b):totable())
    assert.are.same({-1, 0, 2}, (a - b):totable())
    assert.are.same({2, 4, 8}, (a * b):totable())
    assert.are.same({0.5, 1, 2}, (a / b):totable())
    assert.are.same({1, 4, 16}, (a ^ b):totable())
    assert.are.same({-1, -2, -4}, (-a):totable())
    assert.are.same({11, 12, 14}, (a + 10):totable())
    assert.are.same({9, 8, 6}, (10 - a):totable())
    assert.are.same({4, 2, 1}, (4 / a):totable())
    assert.are.same({2, 4, 16}, (2 ^ a):totable())
    assert.are.same({0.5, 1, 2}, (a * 0.5):totable())
  end)

  it('broadcast and promote dtypes', function()
    local m = ebl.zeros(2, 3) + ebl.tensor{1, 2, 3}
    assert.are.same({{1, 2, 3}, {1, 2, 3}}, m:totable())
    local col = ebl.tensor{{10}, {20}}
    assert.are.same({{11, 12, 13}, {21, 22, 23}}, (m + col):totable())
    local i = ebl.tensor({1, 2}, 'int32')
    assert.are.equal('int32', (i + i):dtype())
    assert.are.equal('float32', (i + ebl.tensor{0.5, 0.5}):dtype())
    assert.are.equal('float64', (ebl.zeros(2) + ebl.zeros(2, 'float64'))
      :dtype())
  end)

  it('keep == as identity and leave < undefined', function()
    local a = ebl.tensor{1}
    local b = ebl.tensor{1}
    assert.is_true(a == a)
    assert.is_false(a == b)
    fails('attempt to compare', function() return a < b end)
    assert.are.same({0, 1, 0}, ebl.tensor{1, 2, 3}:eq(2):totable())
    assert.are.equal('uint8', ebl.tensor{1}:eq(1):dtype())
  end)

  it('close tensors in to-be-closed variables', function()
    collectgarbage()
    local before = ebl.memory()
    do
      local t <close> = ebl.zeros(1000)
      assert.are.equal(before + 4000, ebl.memory())
    end
    assert.are.equal(before, ebl.memory())
  end)

  it('refuse closed tensors', function()
    local t = ebl.zeros(3)
    do local c <close> = t end
    assert.are.equal('tensor(closed)', tostring(t))
    fails('the tensor was closed', function() return t:sum() end)
    fails('the tensor was closed', function() return t + 1 end)
  end)
end)

describe('arithmetic methods', function()
  it('work in place and return self', function()
    local t = ebl.tensor{1, 2, 3}
    assert.are.equal(t, t:add_(1))
    assert.are.same({2, 3, 4}, t:totable())
    t:mul_(ebl.tensor{1, 0, 2}):sub_(1)
    assert.are.same({1, -1, 7}, t:totable())
    t:add_(ebl.tensor{1, 1, 1}, 2)
    assert.are.same({3, 1, 9}, t:totable())
    t:sub_(ebl.tensor{1, 1, 1}, 3)
    assert.are.same({0, -2, 6}, t:totable())
    t:div_(2):pow_(2)
    assert.are.same({0, 1, 9}, t:totable())
    t:maximum_(1):minimum_(5)
    assert.are.same({1, 1, 5}, t:totable())
    assert.are.same({1, 3}, ebl.tensor{1, 3}:maximum(2):minimum(3)
      :sub(ebl.tensor{1, 0}):totable())
  end)

  it('compare elementwise', function()
    local x = ebl.tensor{1, 2, 3}
    assert.are.same({1, 0, 0}, x:lt(2):totable())
    assert.are.same({1, 1, 0}, x:le(2):totable())
    assert.are.same({0, 0, 1}, x:gt(2):totable())
    assert.are.same({0, 1, 1}, x:ge(2):totable())
    assert.are.same({1, 0, 1}, x:ne(2):totable())
    assert.are.same({0, 1, 0}, x:eq(ebl.tensor{0, 2, 0}):totable())
  end)

  it('apply unary functions like Lua math', function()
    local xs = {-2, -0.5, 0.25, 1.5}
    local x = ebl.tensor(xs, 'float64')
    local function each(f)
      local out = {}
      for i, v in ipairs(xs) do out[i] = f(v) end
      return out
    end
    local function sig(v) return 1 / (1 + math.exp(-v)) end
    close(x:tanh():totable(), each(function(v)
      return (math.exp(v) - math.exp(-v)) / (math.exp(v) + math.exp(-v))
    end), 1e-12)
    close(x:sigmoid():totable(), each(sig), 1e-12)
    close(x:relu():totable(), each(function(v) return math.max(v, 0) end))
    close(x:abs():totable(), each(math.abs))
    close(x:exp():totable(), each(math.exp), 1e-12)
    close(x:abs():log():totable(), each(function(v)
      return math.log(math.abs(v))
    end), 1e-12)
    close(x:abs():sqrt():totable(), each(function(v)
      return math.sqrt(math.abs(v))
    end), 1e-12)
    close(x:square():totable(), each(function(v) return v * v end))
    close(x:sign():totable(), {-1, -1, 1, 1})
    close(x:neg():totable(), each(function(v) return -v end))
    close(x:reciprocal():totable(), each(function(v) return 1 / v end))
    close(x:leaky_relu(0.1):totable(), each(function(v)
      return v > 0 and v or 0.1 * v
    end))
    close(x:softplus():totable(), each(function(v)
      return math.log(1 + math.exp(v))
    end), 1e-12)
    close(x:clamp(-1, 1):totable(), {-1, -0.5, 0.25, 1})
    close(x:clamp(0):totable(), {0, 0, 0.25, 1.5})
    close(x:clamp(nil, 0):totable(), {-2, -0.5, 0, 0})
    local y = x:clone()
    assert.are.equal(y, y:tanh_())
    close(y:totable(), x:tanh():totable(), 1e-15)
    y:copy(x):clamp_(-1, 1)
    close(y:totable(), {-1, -0.5, 0.25, 1})
  end)

  it('give activation derivatives that match finite differences',
    function()
      local x = ebl.tensor({-1.3, -0.2, 0.4, 2.1}, 'float64')
      local h = 1e-6
      for _, name in ipairs{'tanh', 'sigmoid', 'gelu', 'softplus',
                            'relu', 'leaky_relu'} do
        local fd = ((x + h)[name](x + h) - (x - h)[name](x - h)) / (2 * h)
        close(x[name .. '_grad'](x):totable(), fd:totable(), 1e-7, name)
      end
    end)

  it('reduce over all elements or a 1-based dim', function()
    local x = ebl.tensor{{1, 5, 3}, {4, 2, 6}}
    assert.are.equal(21, x:sum():item())
    assert.are.equal(3.5, x:mean():item())
    assert.are.equal(6, x:max():item())
    assert.are.equal(1, x:min():item())
    assert.are.same({5, 7, 9}, x:sum(1):totable())
    assert.are.same({{9}, {12}}, x:sum(2, true):totable())
    assert.are.same({3, 4}, x:mean(-1):totable())
    assert.are.same({5, 6}, x:max(2):totable())
    assert.are.same({1, 2}, x:min(2):totable())
    assert.are.same({2, 3}, x:argmax(2):totable())
    assert.are.same({1, 2}, x:argmin(2):totable())
    assert.are.same({2, 1, 2}, x:argmax(1):totable())
    assert.are.equal(6, x:argmax():item())
    assert.are.equal(1, x:argmin():item())
    assert.are.equal('int32', x:argmax(1):dtype())
    close(x:var():item(), 3.5)
    close(x:var(nil, false, false):item(), 17.5 / 6)
    close(x:var(2):totable(), {4, 4})
    close(x:norm():item(), math.sqrt(91), 1e-6)
    close(x:norm(1):item(), 21)
    close(x:norm(math.huge):item(), 6)
    close(x:norm(2, 1):totable(), {math.sqrt(17), math.sqrt(29),
                                   math.sqrt(45)}, 1e-6)
    assert.are.same({1, 1}, x:sum(nil, true):shape())
    assert.are.same({}, x:sum():shape())
    assert.are.equal('int32', x:int():sum():dtype())
  end)

  it('multiply matrices', function()
    local a = ebl.tensor{{1, 2}, {3, 4}, {5, 6}}
    local b = ebl.tensor{{1, 0, 2}, {0, 1, 3}}
    assert.are.same({{1, 2, 8}, {3, 4, 18}, {5, 6, 28}},
      ebl.matmul(a, b):totable())
    assert.are.same({{1, 3, 5}, {2, 4, 6}, {8, 18, 28}},
      b:transpose():matmul(a:transpose()):totable())
    assert.are.same({5, 11, 17}, ebl.matmul(a, ebl.tensor{1, 2}):totable())
  end)

  it('select with where and normalise with softmax', function()
    local x = ebl.tensor{-1, 2, -3}
    assert.are.same({0, 2, 0}, ebl.where(x:gt(0), x, 0):totable())
    assert.are.same({-1, 1, -3}, ebl.where(x:gt(0), 1, x):totable())
    local z = ebl.tensor({{1, 2, 3}, {0, 0, 0}}, 'float64')
    local p = ebl.softmax(z, 2)
    local e = {math.exp(1), math.exp(2), math.exp(3)}
    local s = e[1] + e[2] + e[3]
    close(p:totable(), {{e[1] / s, e[2] / s, e[3] / s},
                        {1 / 3, 1 / 3, 1 / 3}}, 1e-12)
    close(z:log_softmax():totable(), z:softmax(-1):log():totable(), 1e-12)
    close(ebl.softmax(z, 1):sum(1):totable(), {1, 1, 1}, 1e-12)
  end)

  it('joins tensors with cat and stack', function()
    local a = ebl.tensor{{1, 2}}
    local b = ebl.tensor{{3, 4}, {5, 6}}
    assert.are.same({{1, 2}, {3, 4}, {5, 6}}, ebl.cat{a, b}:totable())
    assert.are.same({{1, 2, 1, 2}}, ebl.cat({a, a}, 2):totable())
    assert.are.same({{1, 2}, {1, 2}}, ebl.stack{a[1], a[1]}:totable())
    assert.are.same({{1, 3}, {2, 4}}, ebl.stack({b[1]:sub(2), b[1]}, -1)
      :totable())
    fails("bad argument #1 to 'cat' (item 2 has shape 2x2, item 1 1x2",
      function() return ebl.cat({a, b}, 2) end)
    fails("bad argument #1 to 'stack' (item 2 has shape 2, item 1 1)",
      function() return ebl.stack{ebl.zeros(1), ebl.zeros(2)} end)
    fails("bad argument #1 to 'cat' (item 2 is float64 on cpu",
      function() return ebl.cat{a, a:double()} end)
    fails("bad argument #1 to 'cat' (no tensors given)",
      function() return ebl.cat{} end)
    fails("bad argument #2 to 'cat' (dim must be in 1..2 or -2..-1, got 3)",
      function() return ebl.cat({a}, 3) end)
  end)
end)

describe('layers', function()
  -- <a, b> of two tensors, in float64.
  local function dot(a, b) return (a:double() * b:double()):sum():item() end

  it('convolve a hand-computed example', function()
    local x = ebl.arange(9):reshape(1, 1, 3, 3)
    local w = ebl.tensor{{{{1, 0}, {0, -1}}}}
    local y = ebl.conv2d(x, w)
    assert.are.same({{{{-4, -4}, {-4, -4}}}}, y:totable())
    local yb = ebl.conv2d(x, w, ebl.tensor{10})
    assert.are.same({{{{6, 6}, {6, 6}}}}, yb:totable())
    local yp = ebl.conv2d(x, ebl.ones(1, 1, 1, 1), {padding = 1})
    assert.are.same({1, 1, 5, 5}, yp:shape())
    local ys = ebl.conv2d(x, w, nil, {stride = 2, padding = {1, 1}})
    assert.are.same({1, 1, 2, 2}, ys:shape())
    assert.are.same({{{{0, -2}, {-6, -4}}}}, ys:totable())
  end)

  it('give conv VJPs that match finite differences', function()
    ebl.manual_seed(3)
    local o = {stride = 2, padding = 1}
    local x = ebl.randn({2, 2, 5, 5}, 'float64')
    local w = ebl.randn({3, 2, 3, 3}, 'float64')
    local dy = ebl.randn(ebl.conv2d(x, w, nil, o):shape(), 'float64')
    local dx = ebl.conv2d_input_vjp(dy, w, x, o)
    local dw = ebl.conv2d_weight_vjp(x, dy, w:shape(), o)
    local h = 1e-6
    local function f(xx, ww) return dot(dy, ebl.conv2d(xx, ww, nil, o)) end
    for _, at in ipairs{{1, 1, 1, 1}, {2, 2, 3, 4}, {1, 2, 5, 5}} do
      local e = ebl.zeros_like(x)
      e[at[1]][at[2]][at[3]][at[4]] = h
      local fd = (f(x + e, w) - f(x - e, w)) / (2 * h)
      close(dx[at[1]][at[2]][at[3]][at[4]], fd, 1e-6)
    end
    for _, at in ipairs{{1, 1, 1, 1}, {3, 2, 2, 3}} do
      local e = ebl.zeros_like(w)
      e[at[1]][at[2]][at[3]][at[4]] = h
      local fd = (f(x, w + e) - f(x, w - e)) / (2 * h)
      close(dw[at[1]][at[2]][at[3]][at[4]], fd, 1e-6)
    end
    local db = ebl.conv2d_bias_vjp(dy)
    close(db:totable(), dy:sum(4):sum(3):sum(1):totable(), 1e-12)
  end)

  it('make conv_transpose2d the adjoint of conv2d', function()
    ebl.manual_seed(4)
    local o = {stride = 2, padding = 1, output_padding = 1}
    local x = ebl.randn({1, 3, 4, 4}, 'float64')
    local w = ebl.randn({3, 2, 3, 3}, 'float64')
    local y = ebl.conv_transpose2d(x, w, nil, o)
    assert.are.same({1, 2, 8, 8}, y:shape())
    local v = ebl.randn(y:shape(), 'float64')
    local co = {stride = 2, padding = 1}
    close(dot(y, v), dot(x, ebl.conv2d(v, w, nil, co)), 1e-10)
    local dx = ebl.conv_transpose2d_input_vjp(v, w, x, o)
    close(dx:totable(), ebl.conv2d(v, w, nil, co):totable(), 1e-10)
    local dw = ebl.conv_transpose2d_weight_vjp(x, v, w, o)
    local h = 1e-6
    local e = ebl.zeros_like(w)
    e[2][1][2][3] = h
    local fd = (dot(v, ebl.conv_transpose2d(x, w + e, nil, o)) -
                dot(v, ebl.conv_transpose2d(x, w - e, nil, o))) / (2 * h)
    close(dw[2][1][2][3], fd, 1e-6)
  end)

  it('pool with 1-based indices and route gradients back', function()
    local x = ebl.tensor{{{{1, 5, 2, 0}, {3, 4, 8, 1}, {0, 0, 1, 1},
                           {2, 9, 1, 3}}}}
    local y, idx = ebl.max_pool2d(x, 2)
    assert.are.same({{{{5, 8}, {9, 3}}}}, y:totable())
    assert.are.same({{{{2, 7}, {14, 16}}}}, idx:totable())
    local dx = ebl.max_pool2d_vjp(ebl.ones(1, 1, 2, 2), idx, x, 2)
    assert.are.same({{{{0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 0},
                       {0, 1, 0, 1}}}}, dx:totable())
    local a = ebl.avg_pool2d(x, 2)
    assert.are.same({{{{13 / 4, 11 / 4}, {11 / 4, 6 / 4}}}}, a:totable())
    local da = ebl.avg_pool2d_vjp(ebl.ones(1, 1, 2, 2), x:shape(), {2, 2})
    assert.are.same({1, 1, 4, 4}, da:shape())
    close(da:sum():item(), 4)
    close(da[1][1][1][1], 0.25)
    local y3 = ebl.max_pool2d(x, 3, 1)
    assert.are.same({{{{8, 8}, {9, 9}}}}, y3:totable())
  end)

  it('compute losses and their gradients', function()
    local x = ebl.tensor({{1, 2}, {3, 5}}, 'float64')
    local t = ebl.tensor({{0, 2}, {3, 3}}, 'float64')
    close(ebl.mse_loss(x, t), (0.5 * 1 + 0.5 * 4) / 2)
    local loss, g = ebl.mse_loss_grad(x, t)
    close(loss, 1.25)
    close(g:totable(), {{0.5, 0}, {0, 1}})
    local z = ebl.tensor({{0, 0}, {1, 3}}, 'float64')
    local labels = ebl.tensor({1, 0}, 'int32')
    local l1 = math.log(2)
    local l2 = math.log(math.exp(1) + math.exp(3)) - 1
    close(ebl.cross_entropy(z, labels), (l1 + l2) / 2, 1e-12)
    local _, dz = ebl.cross_entropy_grad(z, labels)
    local h = 1e-6
    local e = ebl.zeros_like(z)
    e[2][2] = h
    local fd = (ebl.cross_entropy(z + e, labels) -
                ebl.cross_entropy(z - e, labels)) / (2 * h)
    close(dz[2][2], fd, 1e-7)
    local onehot = ebl.tensor({{0, 1}, {1, 0}}, 'float64')
    close(ebl.cross_entropy(z, onehot), (l1 + l2) / 2, 1e-12)
  end)
end)

describe('bad input', function()
  it('names function, argument and value for shapes', function()
    fails("bad argument #2 to 'zeros' (size must be >= 0, got -3)",
      function() return ebl.zeros(2, -3) end)
    fails("bad argument #1 to 'ones' (shape[2] must be >= 0, got -1)",
      function() return ebl.ones{2, -1} end)
    fails("bad argument #1 to 'empty' (shape[1] must be an integer, got "
      .. "2.5)", function() return ebl.empty{2.5} end)
    fails("bad argument #1 to 'zeros' (shape (table or integers) expected, "
      .. "got string)", function() return ebl.zeros('x') end)
    fails("bad argument #1 to 'zeros' (shape has 9 dims, at most 8",
      function() return ebl.zeros{1, 1, 1, 1, 1, 1, 1, 1, 1} end)
    fails("bad argument #1 to 'full' (table expected, got number)",
      function() return ebl.full(2, 3) end)
    fails("bad argument #2 to 'full' (number expected, got no value)",
      function() return ebl.full({2}) end)
    fails("bad argument #1 to 'reshape' (only one size may be -1)",
      function() return ebl.zeros(4):reshape(-1, -1) end)
  end)

  it('names bad options and dtypes', function()
    fails("bad argument #2 to 'zeros' (option 'dtype' must be one of "
      .. "float32, float64, int32, uint8, got float16)",
      function() return ebl.zeros({2}, {dtype = 'float16'}) end)
    fails("bad argument #2 to 'tensor' (dtype must be one of float32, "
      .. "float64, int32, uint8, got 'half')",
      function() return ebl.tensor({1}, 'half') end)
    fails("bad argument #2 to 'zeros' (unknown option 'dtyp' (known: "
      .. "dtype, device))",
      function() return ebl.zeros({2}, {dtyp = 'float64'}) end)
    fails("option 'device' must be 'cpu' or 'cuda', got gpu",
      function() return ebl.zeros({2}, {device = 'gpu'}) end)
    fails("bad argument #2 to 'rand' (dtype must be float32 or float64, "
      .. "got int32)", function() return ebl.rand(2, 'int32') end)
    fails("bad argument #1 to 'to' (dtype must be one of",
      function() return ebl.zeros(2):to('int64') end)
  end)

  it('reports ragged and non-numeric nested tables', function()
    fails("bad argument #1 to 'tensor' (ragged nested table: [2] has 1 "
      .. "elements, expected 2)",
      function() return ebl.tensor{{1, 2}, {3}} end)
    fails("bad argument #1 to 'tensor' (ragged nested table: [2][1] is a "
      .. "table, expected a number)",
      function() return ebl.tensor{{1}, {{2}}} end)
    fails("bad argument #1 to 'tensor' (ragged nested table: [2] is a "
      .. "number, expected a table)",
      function() return ebl.tensor{{1}, 2} end)
    fails("bad argument #1 to 'tensor' (number expected at [1][2], got "
      .. "string)", function() return ebl.tensor{{1, 'a'}} end)
    fails("bad argument #1 to 'tensor' (value 2.5 at [2] does not fit "
      .. "int32)", function() return ebl.tensor({1, 2.5}, 'int32') end)
    fails("bad argument #1 to 'tensor' (value 256 at [1] does not fit "
      .. "uint8)", function() return ebl.tensor({256}, 'uint8') end)
    fails("bad argument #1 to 'tensor' (nested table of numbers expected, "
      .. "got string)", function() return ebl.tensor('x') end)
  end)

  it('checks dims and indices, 1-based', function()
    local t = ebl.zeros(2, 3)
    fails("bad argument #1 to 'size' (dim must be in 1..2 or -2..-1, got 3)",
      function() return t:size(3) end)
    fails("bad argument #1 to 'sum' (dim must be in 1..2 or -2..-1, got 0)",
      function() return t:sum(0) end)
    fails("bad argument #2 to 'select' (index must be in 1..3 or -3..-1, "
      .. "got 4)", function() return t:select(2, 4) end)
    fails("bad argument #2 to 'narrow' (start must be in 1..4, got 0)",
      function() return t:narrow(2, 0, 1) end)
    fails("bad argument #3 to 'narrow' (length must be in 0..1 (dim 2 has "
      .. "size 3), got 2)", function() return t:narrow(2, 3, 2) end)
    fails("bad argument #1 to 'unsqueeze' (dim must be in 1..3 or -3..-1, "
      .. "got 4)", function() return t:unsqueeze(4) end)
    fails("bad argument #1 to 'permute' (dims must be a permutation of "
      .. "1..2, got 1 at place 2)", function() return t:permute(1, 1) end)
    fails("bad argument #1 to 'permute' (permute needs 2 dims, got 3)",
      function() return t:permute(1, 2, 3) end)
    fails("bad argument #1 to 'transpose' (dims needed for a 3-dim tensor",
      function() return ebl.zeros(1, 2, 3):transpose() end)
    fails("calling 'item' on bad self (item needs a tensor of one element, "
      .. "got 6)", function() return t:item() end)
    fails("bad argument #2 to 'sum' (keepdim must be a boolean, got "
      .. "string)", function() return t:sum(1, 'yes') end)
  end)

  it('rejects non-tensors and bad numbers', function()
    fails("bad argument #1 to 'matmul' (ebl.Tensor expected, got table)",
      function() return ebl.matmul({}, ebl.zeros(2)) end)
    fails("bad argument #1 to 'add' (ebl.Tensor or number expected, got "
      .. "string)", function() return ebl.zeros(2):add('x') end)
    fails("bad argument #2 to 'add' (ebl.Tensor or number expected, got "
      .. "table)", function() return ebl.zeros(2) + {} end)
    fails("bad argument #1 to 'sum' (ebl.Tensor expected, got table)",
      function() return ebl.Tensor.sum({}) end)
    fails("bad argument #2 to 'randint' (hi must be > lo, got 3 <= 5)",
      function() return ebl.randint(5, 3, {2}) end)
    fails("bad argument #3 to 'linspace' (point count must be >= 1, got 0)",
      function() return ebl.linspace(0, 1, 0) end)
    fails("bad argument #3 to 'arange' (step must not be 0)",
      function() return ebl.arange(0, 1, 0) end)
    fails("bad argument #1 to 'eye' (size must be >= 0, got -1)",
      function() return ebl.eye(-1) end)
    fails("bad argument #1 to 'manual_seed' (seed must be >= 0, got -1)",
      function() return ebl.manual_seed(-1) end)
    fails("bad argument #1 to 'set_num_threads' (thread count must be in "
      .. "1..4096, got 0)", function() return ebl.set_num_threads(0) end)
    fails("bad argument #2 to 'clamp' (max must be >= min",
      function() return ebl.zeros(2):clamp(1, 0) end)
    fails('clamp: min must be a number, got nan',
      function() return ebl.zeros(2):clamp(0 / 0) end)
    fails('clamp: max must be a number, got nan',
      function() return ebl.zeros(2):clamp(0, 0 / 0) end)
    fails("bad argument #1 to 'norm' (p must be > 0, got -1",
      function() return ebl.zeros(2):norm(-1) end)
  end)

  it('passes on the core messages for shapes that do not fit', function()
    fails('matmul: shapes 3x4 and 3x4 do not fit',
      function() return ebl.matmul(ebl.zeros(3, 4), ebl.zeros(3, 4)) end)
    fails('do not broadcast',
      function() return ebl.zeros(2, 3) + ebl.zeros(4) end)
    fails('reshape', function() return ebl.zeros(6):reshape(4, 2) end)
    fails('conv2d', function()
      return ebl.conv2d(ebl.zeros(1, 3, 5, 5), ebl.zeros(2, 1, 3, 3))
    end)
    fails('int32', function()
      return ebl.tensor({1}, 'int32') / ebl.tensor({1}, 'int32')
    end)
  end)

  it('checks layer options', function()
    local x, w = ebl.zeros(1, 1, 4, 4), ebl.zeros(1, 1, 3, 3)
    fails("bad argument #4 to 'conv2d' (option 'stride' must be an integer "
      .. ">= 1 or a pair {h, w} of them, got 0)",
      function() return ebl.conv2d(x, w, nil, {stride = 0}) end)
    fails("bad argument #3 to 'conv2d' (option 'padding' must be an "
      .. "integer >= 0 or a pair {h, w} of them, got -1)",
      function() return ebl.conv2d(x, w, {padding = -1}) end)
    fails("bad argument #4 to 'conv2d' (unknown option 'output_padding'",
      function() return ebl.conv2d(x, w, nil, {output_padding = 1}) end)
    fails("bad argument #4 to 'conv2d' (option 'groups' must be >= 1, got "
      .. "0)", function() return ebl.conv2d(x, w, nil, {groups = 0}) end)
    fails("bad argument #3 to 'conv2d' (ebl.Tensor expected, got number)",
      function() return ebl.conv2d(x, w, 1) end)
    fails("bad argument #2 to 'max_pool2d' (kernel size must be an integer "
      .. ">= 1 or a pair {h, w} of them, got 0)",
      function() return ebl.max_pool2d(x, 0) end)
    fails("bad argument #2 to 'max_pool2d' (value expected)",
      function() return ebl.max_pool2d(x) end)
    fails("bad argument #3 to 'avg_pool2d' (stride must be an integer >= 1",
      function() return ebl.avg_pool2d(x, 2, {1, 2, 3}) end)
    fails("bad argument #1 to 'conv2d_bias_vjp' (dy must have 4 dims",
      function() return ebl.conv2d_bias_vjp(ebl.zeros(3)) end)
    fails("bad argument #2 to 'max_pool2d_vjp' (indices must be in 1..16 "
      .. "(an input plane), got 0)", function()
        return ebl.max_pool2d_vjp(ebl.zeros(1, 1, 2, 2),
          ebl.zeros(1, 1, 2, 2, 'int32'), x, 2)
      end)
    fails("bad argument #2 to 'max_pool2d_vjp' (indices must be in 1..16 "
      .. "(an input plane), got 17)", function()
        return ebl.max_pool2d_vjp(ebl.zeros(1, 1, 2, 2),
          ebl.full({1, 1, 2, 2}, 17, 'int32'), x, 2)
      end)
    fails("bad argument #2 to 'max_pool2d_vjp' (indices must be int32",
      function()
        return ebl.max_pool2d_vjp(ebl.zeros(1, 1, 2, 2),
          ebl.zeros(1, 1, 2, 2), x, 2)
      end)
  end)

  it('never crashes on closed tensors or wrong self', function()
    local t = ebl.zeros(2)
    do local c <close> = t end
    for _, name in ipairs{'shape', 'sum', 'clone', 'tanh', 'totable',
                          'print', 'reshape', 'add_'} do
      fails('the tensor was closed', function()
        return ebl.Tensor[name](t, 1)
      end)
    end
    fails('ebl.Tensor expected', function() return ebl.Tensor.shape(5) end)
  end)
end)

describe('memory', function()
  -- Makes n tensors of 4 MB without collecting (unset, for speed: the
  -- storage is what counts); returns the highest ebl.memory() above the
  -- start (stops early past 1 GB).
  local function churn(n)
    collectgarbage()
    local base, peak = ebl.memory(), 0
    for _ = 1, n do
      local t = ebl.empty(1024 * 1024)
      t[1] = 1
      peak = math.max(peak, ebl.memory() - base)
      if peak > 2 ^ 30 then break end
    end
    return peak
  end

  it('stays bounded without collectgarbage (incremental)', function()
    collectgarbage('incremental')
    local peak = churn(1000)
    assert(peak < 200 * 2 ^ 20, ('peak %.0f MB'):format(peak / 2 ^ 20))
  end)

  it('stays bounded in the generational mode too', function()
    collectgarbage('generational')
    local peak = churn(1000)
    collectgarbage('incremental')
    assert(peak < 200 * 2 ^ 20, ('peak %.0f MB'):format(peak / 2 ^ 20))
  end)

  it('counts live bytes, not views', function()
    collectgarbage()
    local before, _, count = ebl.memory()
    local t = ebl.zeros(256)
    local v = t:reshape(16, 16)
    local live, peak, count2 = ebl.memory()
    assert.are.equal(before + 1024, live)
    assert(peak >= live)
    assert.are.equal(count + 1, count2)
    assert.is_true(v:shares_storage(t))
  end)

  it('sets and reads the thread count', function()
    local n = ebl.get_num_threads()
    ebl.set_num_threads(1)
    assert.are.equal(1, ebl.get_num_threads())
    ebl.set_num_threads(n)
    assert.are.equal(n, ebl.get_num_threads())
  end)
end)

describe('help', function()
  -- The help text of f, or nil.
  local function text(f) return ebl._help_texts[f] end

  it('exists for every function of ebl', function()
    local missing = {}
    for name, f in pairs(ebl) do
      if type(f) == 'function' and not text(f) then
        missing[#missing + 1] = name
      end
    end
    table.sort(missing)
    assert.are.same({}, missing)
  end)

  it('exists for every Tensor method, with an example', function()
    local missing = {}
    local count = 0
    for name, f in pairs(ebl.Tensor) do
      count = count + 1
      local s = text(f)
      if not s or not s:find('Example', 1, true) then
        missing[#missing + 1] = name
      end
    end
    table.sort(missing)
    assert.are.same({}, missing)
    assert(count > 80, 'only ' .. count .. ' methods')
  end)

  it('describes tensors themselves', function()
    assert.truthy(text(getmetatable(ebl.zeros(1))):find('1-based', 1, true))
    assert.truthy(text(ebl.Tensor):find('__lt', 1, true))
  end)
end)

describe('reductions over no elements', function()
  it('the variance of no elements is NaN, not -0', function()
    local v = ebl.zeros{0}:var():item()
    assert.is_true(v ~= v, tostring(v))
    for _, x in ipairs(ebl.zeros{3, 0}:var(2):totable()) do
      assert.is_true(x ~= x, tostring(x))
    end
    assert.are.equal(1, ebl.tensor{1, 2, 3}:var():item())
  end)
end)
