-- ebl.plot: exact charts for small inputs in ASCII and braille, several
-- series with a legend, tensors, log scale, and its argument errors.
local ebl = require 'ebl'

local function lines(text)
  local out = {}
  for l in (text .. '\n'):gmatch('(.-)\n') do out[#out + 1] = l end
  return out
end

describe('ebl.plot', function()
  it('draws a rising line in ASCII with its axes', function()
    local text = ebl.plot({0, 1, 2, 3}, {width = 4, height = 4,
      ascii = true, quiet = true})
    assert.are.same({
      '  3 |   *',
      '1.5 |  * ',
      '    | *  ',
      '  0 |*   ',
      '    +----',
      '     1  4',
    }, lines(text))
  end)

  it('joins far points with a segment', function()
    local text = ebl.plot({0, 3}, {width = 4, height = 4, ascii = true,
      quiet = true})
    assert.are.same({'  3 |   *', '1.5 |  * ', '    | *  ', '  0 |*   '},
      {table.unpack(lines(text), 1, 4)})
  end)

  it('draws one series in braille dots where the terminal is UTF-8',
    function()
      local getenv = os.getenv
      os.getenv = function(k) return k == 'LANG' and 'C.UTF-8' or nil end
      local ok, text = pcall(ebl.plot, {0, 1}, {width = 2, height = 2,
        quiet = true})
      os.getenv = getenv
      assert(ok, text)
      -- A grid of 4 x 8 dots: the line from (0, 0) to (3, 7) takes the
      -- dots (0, 0), (0, 1), (1, 2), (1, 3) in the bottom left cell.
      local l = lines(text)
      assert.are.equal(2, utf8.len(l[1]:match('|(.*)$')))
      assert.are.equal('0 |' .. utf8.char(0x2800 + 0x40 + 0x04 + 0x10 +
        0x08) .. ' ', l[2])
    end)

  it('draws named series with one glyph each and a legend', function()
    local text = ebl.plot({a = {1, 1, 1}, b = {0, 0, 0}}, {width = 3,
      height = 2, ascii = true, quiet = true})
    assert.are.same({'1 |***', '0 |+++', '  +---', '   1 3',
      '   * a   + b'}, lines(text))
  end)

  it('takes a tensor, skips NaN and draws a log scale', function()
    local t = ebl.tensor{1, 10, 0 / 0, 100}
    local text = ebl.plot(t, {width = 4, height = 3, ascii = true,
      logy = true, quiet = true, title = 'loss'})
    local l = lines(text)
    assert.are.equal('     loss', l[1])
    assert.are.equal('100 |   *', l[2])
    assert.are.equal(' 10 | *  ', l[3])
    assert.are.equal('  1 |*   ', l[4])
  end)

  it('prints the chart unless quiet', function()
    local printed
    local p = _G.print
    _G.print = function(s) printed = s end
    local ok, ret = pcall(ebl.plot, {1, 2}, {ascii = true})
    _G.print = p
    assert(ok, ret)
    assert.is_nil(ret)
    assert.are.equal(ebl.plot({1, 2}, {ascii = true, quiet = true}),
      printed)
  end)

  it('names what is wrong with its arguments', function()
    assert.has_error(function() ebl.plot('x') end,
      'plot: expected a table of numbers, a tensor or a table of named '
      .. 'series, got string')
    assert.has_error(function() ebl.plot({1, 'a'}) end,
      "plot: series '' value 2 is a string, not a number")
    assert.has_error(function() ebl.plot({0 / 0}) end,
      'plot: no finite values to draw')
    assert.has_error(function() ebl.plot({1, -1}, {logy = true}) end,
      'plot: logy needs positive values; series  has -1 at 2')
    assert.has_error(function() ebl.plot({1}, {width = 0}) end,
      'plot: width must be an integer in 2..1000, got 0')
    assert.has_error(function() ebl.plot({1}, {colour = 1}) end,
      "plot: unknown option 'colour'")
  end)
end)
