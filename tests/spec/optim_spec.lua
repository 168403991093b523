-- Parameter optimisers against updates computed by hand.
local ebl = require 'ebl'
local optim = ebl.optim

local function t(values) return ebl.tensor(values, 'float64') end

local function near(expected, actual, tol)
  local a = actual:totable()
  for i, e in ipairs(expected) do
    assert.is_true(math.abs(a[i] - e) <= (tol or 1e-12),
      ('element %d: expected %.17g, got %.17g'):format(i, e, a[i]))
  end
end

describe('sgd', function()
  it('takes p - lr g', function()
    local p = t{1, 2}
    optim.sgd{lr = 0.1}:step({p}, {t{0.5, -1}})
    near({0.95, 2.1}, p)
  end)

  it('keeps momentum and applies weight decay', function()
    local p, g = t{1}, t{0.5}
    local o = optim.sgd{lr = 0.1, momentum = 0.9, weight_decay = 0.1}
    o:step({p}, {g})          -- d = 0.5 + 0.1 = 0.6, buf = 0.6
    near({1 - 0.06}, p)
    o:step({p}, {g})          -- d = 0.5 + 0.094 = 0.594
    local buf = 0.9 * 0.6 + (0.5 + 0.1 * 0.94)
    near({0.94 - 0.1 * buf}, p)
  end)

  it('nesterov looks ahead by the momentum', function()
    local p = t{0}
    local o = optim.sgd{lr = 1, momentum = 0.5, nesterov = true}
    o:step({p}, {t{1}})       -- buf = 1, d = 1 + 0.5
    near({-1.5}, p)
  end)
end)

describe('adam', function()
  it('first step moves each element by lr against its sign', function()
    local p = t{1, 1}
    optim.adam{lr = 0.01}:step({p}, {t{4, -0.001}})
    near({0.99, 1.01}, p, 1e-6)
  end)

  it('adamw decays the weight apart from the gradient', function()
    local p = t{2}
    optim.adamw{lr = 0.1, weight_decay = 0.5}:step({p}, {t{1}})
    near({2 * (1 - 0.05) - 0.1}, p, 1e-7)
  end)

  it('state saved and restored continues identically', function()
    local p1, p2 = t{1, -1}, t{1, -1}
    local g = t{0.3, 0.2}
    local a = optim.adam{lr = 0.1}
    a:step({p1}, {g})
    local b = optim.adam{lr = 0.1}
    b:load_state(a:state())
    p2:copy(p1)
    a:step({p1}, {g})
    b:step({p2}, {g})
    near(p1:totable(), p2)
  end)
end)

describe('lalr', function()
  it('scales each layer by the harmonic mean over its norm', function()
    -- layer A: weight grad (3, 4), norm 5; layer B: weight (0, 1) and
    -- bias (0), norm 1. H = 2 / (1/5 + 1/1) = 5/3.
    local wa, wb, bb = t{1, 1}, t{1, 1}, t{1}
    local ga, gb, gbb = t{3, 4}, t{0, 1}, t{0}
    local o = optim.lalr{lr = 0.3, base = 'sgd'}
    o:step({wa, wb, bb}, {ga, gb, gbb}, {'A', 'B', 'B'})
    local H = 5 / 3
    local ra, rb = 0.3 * H / 5, 0.3 * H / 1
    near({1 - ra * 3, 1 - ra * 4}, wa)
    near({1, 1 - rb}, wb)
    near({1}, bb)
    assert.is_true(math.abs(o.rates[1] - 0.1) < 1e-15)
    assert.is_true(math.abs(o.rates[2] - 0.5) < 1e-15)
  end)

  it('rejects an unknown base', function()
    assert.has_error(function() optim.lalr{lr = 1, base = 'rmsprop'} end,
      "lalr: base must be sgd, adam, adamw or lars, got 'rmsprop'")
  end)
end)

describe('lars', function()
  it('scales the step by trust * ||p|| / ||g||', function()
    local p = t{3, 4}
    optim.lars{lr = 1, momentum = 0, trust = 0.1}:step({p}, {t{0, 2}})
    -- ratio = 0.1 * 5 / 2 = 0.25; step = 0.25 * g
    near({3, 3.5}, p)
  end)
end)

describe('bad options', function()
  it('names the optimiser and the value', function()
    assert.has_error(function() optim.sgd{lr = -1} end,
      'sgd: lr must be a number > 0, got -1')
    assert.has_error(function() optim.adam{lr = 1, betas = 2} end,
      "adam: unknown option 'betas'")
  end)
end)

-- The message of fn's error without the "file:line: " in front.
local function message(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok)
  return (tostring(err):gsub('^[^:]*:%d+: ', ''))
end

describe('bad gradients', function()
  it('a gradient of another dtype, shape or kind is refused', function()
    local p = t{1, 2}
    for _, make in ipairs{optim.sgd, optim.adam, optim.lalr} do
      local o = make{lr = 0.1}
      assert.are.equal(o.kind .. ': gradient 1 is 2 int32, parameter 1 is '
        .. '2 float64', message(function()
          o:step({p}, {ebl.tensor({1, 1}, 'int32')})
        end))
      assert.are.equal(o.kind .. ': gradient 1 is 3 float64, parameter 1 '
        .. 'is 2 float64', message(function()
          o:step({p}, {t{1, 1, 1}})
        end))
      assert.are.equal(o.kind .. ': gradient 1 must be a tensor, got number',
        message(function() o:step({p}, {5}) end))
    end
    near({1, 2}, p)
  end)
end)

describe('load_state', function()
  it('refuses a state it did not write, naming the field', function()
    local o = optim.adam{lr = 0.1}
    local cases = {
      {{kind = 'adam', t = 'x', slots = {}},
        'load_state: t must be an integer >= 0, got x'},
      {{kind = 'adam', t = 1, slots = 'x'},
        'load_state: slots must be a table, got string'},
      {{kind = 'adam', t = 1, slots = {{m = 5}}},
        'load_state: slots[1] holds tensors named m, v, got m = number'},
      {{kind = 'adam', t = 1, slots = {{q = t{0}}}},
        'load_state: slots[1] holds tensors named m, v, got q = tensor'},
      {{kind = 'sgd', t = 1, slots = {}},
        'load_state: a state of adam expected, got sgd'},
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[2], message(function() o:load_state(c[1]) end))
    end
  end)

  it('buffers of the wrong shape fail at the step, naming both', function()
    local o = optim.adam{lr = 0.1}
    o:load_state{kind = 'adam', t = 1,
      slots = {{m = t{0, 0, 0}, v = t{0, 0, 0}}}}
    local p = t{1, 2}
    local err = message(function() o:step({p}, {t{1, 1}}) end)
    assert.truthy(err:find('adam: buffer [mv] of parameter 1 has shape 3, '
      .. 'the parameter 2'), err)
  end)
end)

describe("lalr's load_state", function()
  it("raises its base's refusals at the caller's line", function()
    local o = optim.lalr{lr = 0.1}
    local states = {
      {kind = 'lalr', base = {kind = 'adam', t = 'x', slots = {}}},
      {kind = 'lalr', base = {kind = 'sgd', t = 1, slots = {}}},
    }
    for _, s in ipairs(states) do
      local ok, err = pcall(function() o:load_state(s) end)
      assert.is_false(ok)
      assert.matches('^[^:]*optim_spec%.lua:%d+: load_state: ', err)
    end
  end)
end)
