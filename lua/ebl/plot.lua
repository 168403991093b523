-- ebl.plot: line charts in the terminal, for energy traces, losses and
-- accuracies at the prompt. One series is drawn in Unicode braille (two
-- by four dots per character) where the terminal speaks UTF-8, else in
-- '*'; several series get one glyph each at character resolution.
return function(ebl)
  local GLYPHS = {'*', '+', 'o', 'x', '#', '@'}
  -- Bit of the braille dot at column c (0, 1) and row r (0..3, top down).
  local DOT = {[0] = {[0] = 0x01, 0x02, 0x04, 0x40},
               [1] = {[0] = 0x08, 0x10, 0x20, 0x80}}

  local function utf8_terminal()
    local loc = os.getenv('LC_ALL') or os.getenv('LC_CTYPE') or
      os.getenv('LANG') or ''
    return loc:lower():find('utf%-?8') ~= nil
  end

  -- The numbers of a table or a tensor (flattened), as a Lua array.
  local function values(s, name)
    if ebl.is_tensor(s) then
      return s:reshape{s:numel()}:totable()
    end
    if type(s) ~= 'table' then
      error(("plot: series '%s' must be a table of numbers or a tensor, "
        .. 'got %s'):format(name, type(s)), 4)
    end
    for i, v in ipairs(s) do
      if type(v) ~= 'number' then
        error(("plot: series '%s' value %d is a %s, not a number")
          :format(name, i, type(v)), 4)
      end
    end
    return s
  end

  -- {name, values} pairs: one unnamed series, or a table of named ones
  -- (sorted by name).
  local function all_series(s)
    if ebl.is_tensor(s) or (type(s) == 'table' and
        (#s > 0 or next(s) == nil)) then
      return {{'', values(s, '')}}
    end
    if type(s) ~= 'table' then
      error('plot: expected a table of numbers, a tensor or a table of '
        .. 'named series, got ' .. type(s), 3)
    end
    local names, out = {}, {}
    for k in pairs(s) do names[#names + 1] = tostring(k) end
    table.sort(names)
    for _, k in ipairs(names) do
      out[#out + 1] = {k, values(s[k] or s[tonumber(k)], k)}
    end
    return out
  end

  -- The y range over every finite value (after the log, if logy).
  local function y_range(list, o)
    local lo, hi = math.huge, -math.huge
    for _, s in ipairs(list) do
      for i, v in ipairs(s[2]) do
        if o.logy then
          if v <= 0 then
            error(('plot: logy needs positive values; series %s%s has '
              .. '%g at %d'):format(s[1] == '' and '' or "'", s[1] ..
              (s[1] == '' and '' or "'"), v, i), 4)
          end
          v = math.log(v, 10)
        end
        if v == v and v ~= math.huge and v ~= -math.huge then
          lo, hi = math.min(lo, v), math.max(hi, v)
        end
      end
    end
    if lo > hi then error('plot: no finite values to draw', 3) end
    if o.ymin then lo = o.logy and math.log(o.ymin, 10) or o.ymin end
    if o.ymax then hi = o.logy and math.log(o.ymax, 10) or o.ymax end
    if hi == lo then lo, hi = lo - 0.5, hi + 0.5 end
    return lo, hi
  end

  -- Dot coordinates (x right, y up) of value i of n on a grid of w x h.
  local function to_grid(i, n, v, w, h, lo, hi)
    local x = n > 1 and math.floor((i - 1) / (n - 1) * (w - 1) + 0.5) or 0
    local y = math.floor((v - lo) / (hi - lo) * (h - 1) + 0.5)
    return x, math.max(0, math.min(h - 1, y))
  end

  -- Calls set(x, y) for each grid point on the segment between two.
  local function segment(x0, y0, x1, y1, set)
    local steps = math.max(math.abs(x1 - x0), math.abs(y1 - y0), 1)
    for k = 0, steps do
      set(math.floor(x0 + (x1 - x0) * k / steps + 0.5),
          math.floor(y0 + (y1 - y0) * k / steps + 0.5))
    end
  end

  -- Draws a series over a grid of w x h points; set(x, y) marks one.
  local function draw(v, o, w, h, lo, hi, set)
    local px, py
    for i, y in ipairs(v) do
      if o.logy then y = math.log(y, 10) end
      if y == y and math.abs(y) ~= math.huge then
        local x, gy = to_grid(i, #v, y, w, h, lo, hi)
        if px then segment(px, py, x, gy, set) else set(x, gy) end
        px, py = x, gy
      else
        px = nil
      end
    end
  end

  -- Rows of characters (top first) for the list of series.
  local function canvas(list, o, width, height, lo, hi)
    local rows = {}
    for r = 1, height do
      rows[r] = {}
      for c = 1, width do rows[r][c] = 0 end
    end
    local braille = #list == 1 and not o.ascii and utf8_terminal()
    for k, s in ipairs(list) do
      if braille then
        draw(s[2], o, 2 * width, 4 * height, lo, hi, function(x, y)
          local r = height - y // 4
          local cell = rows[r]
          cell[x // 2 + 1] = cell[x // 2 + 1] | DOT[x % 2][3 - y % 4]
        end)
      else
        draw(s[2], o, width, height, lo, hi, function(x, y)
          rows[height - y][x + 1] = GLYPHS[(k - 1) % #GLYPHS + 1]
        end)
      end
    end
    for r = 1, height do
      for c = 1, width do
        local v = rows[r][c]
        rows[r][c] = v == 0 and ' ' or type(v) == 'string' and v or
          utf8.char(0x2800 + v)
      end
      rows[r] = table.concat(rows[r])
    end
    return rows
  end

  local function label(v, o)
    return ('%.4g'):format(o.logy and 10 ^ v or v)
  end

  local function check_opts(o)
    for k in pairs(o) do
      if not ({width = 1, height = 1, title = 1, logy = 1, ymin = 1,
          ymax = 1, ascii = 1, quiet = 1})[k] then
        error(("plot: unknown option '%s'"):format(tostring(k)), 3)
      end
    end
    for _, k in ipairs{'width', 'height'} do
      local v = o[k]
      if v ~= nil and (math.type(v) ~= 'integer' or v < 2 or v > 1000) then
        error(('plot: %s must be an integer in 2..1000, got %s'):format(k,
          tostring(v)), 3)
      end
    end
  end

  -- The chart as text: title, rows with the y axis, x axis, legend.
  function ebl.plot(series, opts)
    local o = opts or {}
    check_opts(o)
    local list = all_series(series)
    local width, height = o.width or 60, o.height or 12
    local lo, hi = y_range(list, o)
    local rows = canvas(list, o, width, height, lo, hi)
    local ylabel = {}
    ylabel[(height + 1) // 2] = label((lo + hi) / 2, o)
    ylabel[height], ylabel[1] = label(lo, o), label(hi, o)
    local pad = 0
    for r = 1, height do pad = math.max(pad, #(ylabel[r] or '')) end
    local out = {}
    if o.title then out[#out + 1] = (' '):rep(pad + 2) .. o.title end
    for r = 1, height do
      out[#out + 1] = ('%' .. pad .. 's |%s'):format(ylabel[r] or '',
        rows[r])
    end
    local n = 0
    for _, s in ipairs(list) do n = math.max(n, #s[2]) end
    out[#out + 1] = (' '):rep(pad) .. ' +' .. ('-'):rep(width)
    out[#out + 1] = (' '):rep(pad + 2) .. '1' ..
      ('%' .. (width - 1) .. 's'):format(tostring(n))
    if #list > 1 then
      local legend = {}
      for k, s in ipairs(list) do
        legend[k] = GLYPHS[(k - 1) % #GLYPHS + 1] .. ' ' .. s[1]
      end
      out[#out + 1] = (' '):rep(pad + 2) .. table.concat(legend, '   ')
    end
    local text = table.concat(out, '\n')
    if o.quiet then return text end
    print(text)
  end

  ebl.doc(ebl.plot, 'ebl.plot(values [, {width=60, height=12, title=, '
    .. 'logy=false, ymin=, ymax=, ascii=false, quiet=false}]) draws a line '
    .. 'chart in the terminal (quiet=true returns its text instead of '
    .. 'printing it): values is a table of numbers, '
    .. 'a tensor, or a table of named series ({train=..., test=...}). '
    .. 'e.g. local e, k, trace = m:infer(x, y); ebl.plot(trace)')
end
