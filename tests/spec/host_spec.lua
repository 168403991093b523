-- The Lua surface of the host: the module, help registry, the prompt's
-- printer and completer, the small utilities.
local ebl = require 'ebl'
local repl = require 'ebl.repl'

describe('the ebl module', function()
  it('is the global ebl inside the host', function()
    assert.are.equal(_G.ebl, ebl)
    assert.matches('^%d+%.%d+%.%d+$', ebl.version)
  end)
end)

describe('help', function()
  it('registers and finds the text of a Lua value', function()
    local f = ebl.doc(function() end, 'f(x) does nothing useful')
    assert.are.equal('f(x) does nothing useful', ebl._help_texts[f])
  end)

  it('prints the text with the dotted name of an ebl function',
    function()
      local out = {}
      local write = io.write
      io.write = function(...)
        for _, s in ipairs({...}) do out[#out + 1] = s end
      end
      ebl.help(ebl.clock)
      ebl.help('sleep')
      io.write = write
      local text = table.concat(out)
      assert.matches('^ebl%.clock: clock%(%)', text)
      assert.matches('ebl%.sleep: sleep%(seconds%)', text)
    end)

  it('says when a value has no help', function()
    local out = {}
    local write = io.write
    io.write = function(...) out[#out + 1] = table.concat({...}) end
    ebl.help(function() end)
    io.write = write
    assert.matches('^no help for function', table.concat(out))
  end)

  it('names in its tour only what exists', function()
    local out = {}
    local write = io.write
    io.write = function(...) out[#out + 1] = table.concat({...}) end
    ebl.help()
    io.write = write
    local tour, names = table.concat(out), 0
    for name in tour:gmatch('ebl%.([%w_.]+)') do
      local v = ebl
      for part in name:gmatch('[^.]+') do v = v[part] end
      assert(v ~= nil, 'the tour names ebl.' .. name)
      names = names + 1
    end
    assert(names >= 10, 'the tour names ' .. names .. ' functions')
  end)

  it('has a text for every function of the module', function()
    for name, f in pairs(ebl) do
      if type(f) == 'function' then
        assert.is_string(ebl._help_texts[f], 'no help for ebl.' .. name)
      end
    end
  end)
end)

describe('the prompt printer', function()
  it('shows strings quoted and numbers as Lua writes them', function()
    assert.are.equal('"a\\"b"', repl.format('a"b'))
    assert.are.equal('1.5', repl.format(1.5))
    assert.are.equal('3', repl.format(3))
  end)

  it('shows the array part, then the other keys sorted', function()
    assert.are.equal('{10, 20, a = 1, b = true}',
      repl.format({10, 20, b = true, a = 1}))
  end)

  it('breaks wide tables over lines', function()
    local t = {}
    for i = 1, 30 do t[i] = 1000 + i end
    local s = repl.format(t)
    assert.matches('^{\n  1001,\n  1002,', s)
    assert.matches('\n}$', s)
  end)

  it('cuts long tables and deep nesting', function()
    local t = {}
    for i = 1, 100 do t[i] = i end
    assert.matches('%.%.%. %(60 more%)', repl.format(t))
    assert.are.equal('{{{{...}}}}', repl.format({{{{{}}}}}))
  end)

  it('marks cycles', function()
    local t = {}
    t.self = t
    assert.are.equal('{self = <cycle>}', repl.format(t))
  end)

  it('uses __tostring for objects', function()
    local obj = setmetatable({}, {__tostring = function() return 'OBJ' end})
    assert.are.equal('OBJ', repl.format(obj))
  end)
end)

describe('the prompt completer', function()
  it('completes globals and keywords', function()
    local c = repl.complete('pri')
    assert.are.same({'print('}, c)
    assert.are.same({'function'}, repl.complete('functio'))
  end)

  it('completes fields of nested tables with the right suffix', function()
    assert.are.same({'ebl.sleep('}, repl.complete('ebl.sle'))
    assert.are.same({'string.'}, repl.complete('strin'))
  end)

  it('completes methods through __index tables and functions', function()
    _G.__obj = setmetatable({}, {__index = {alpha = function() end,
                                            beta = 1}})
    assert.are.same({'__obj:alpha('}, repl.complete('__obj:'))
    assert.are.same({'__obj.alpha(', '__obj.beta'},
      repl.complete('__obj.'))
    local mt = {}
    mt.__index = function(_, k) return mt[k] end
    mt.gamma = function() end
    _G.__ud = setmetatable({}, mt)
    assert.are.same({'__ud:gamma('}, repl.complete('__ud:'))
    _G.__obj, _G.__ud = nil, nil
  end)

  it('never calls an __index function', function()
    local called = false
    _G.__trap = setmetatable({}, {__index = function()
      called = true
    end})
    repl.complete('__trap.x')
    repl.complete('__trap.x.y')
    assert.is_false(called)
    _G.__trap = nil
  end)

  it('hides private names unless asked', function()
    for _, c in ipairs(repl.complete('ebl.')) do
      assert.is_nil(c:match('^ebl%._'), c)
    end
    assert.are.same({'ebl._help_texts.'}, repl.complete('ebl._he'))
  end)
end)

describe('utilities', function()
  it('clock is monotonic and sleep waits', function()
    local t0 = ebl.clock()
    ebl.sleep(0.02)
    local dt = ebl.clock() - t0
    assert.is_true(dt >= 0.02 and dt < 1, tostring(dt))
  end)

  it('sleep rejects a negative time', function()
    assert.has_error(function() ebl.sleep(-1) end,
      "bad argument #1 to 'sleep' (seconds must be >= 0)")
  end)
end)
