-- JSON for checkpoints' metadata, training logs and the runner's last
-- line: ebl.json.encode(value) and ebl.json.decode(text). Tables with
-- keys 1..n (and no others) are arrays, other tables objects with their
-- keys sorted, so the same value always gives the same text. Floats are
-- written with 17 significant digits and read back exactly.
return function(ebl)
  local json = {}

  local ESCAPES = {['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b',
    ['\f'] = '\\f', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t'}

  local function quote(s)
    return '"' .. s:gsub('[%c"\\]', function(c)
      return ESCAPES[c] or ('\\u%04x'):format(c:byte())
    end) .. '"'
  end

  local function number(x)
    if math.type(x) == 'integer' then return tostring(x) end
    if x ~= x or x == math.huge or x == -math.huge then return 'null' end
    if x == math.floor(x) and math.abs(x) < 2^53 then
      return ('%.1f'):format(x)
    end
    local s = ('%.15g'):format(x)
    if tonumber(s) ~= x then s = ('%.17g'):format(x) end
    return s
  end

  -- Whether t is an array: keys exactly 1..n (an empty table is one).
  local function is_array(t)
    local n = 0
    for _ in pairs(t) do n = n + 1 end
    for i = 1, n do
      if t[i] == nil then return false end
    end
    return true
  end

  local encode

  local function encode_table(t, seen)
    if seen[t] then error('json.encode: a table contains itself', 0) end
    seen[t] = true
    local parts = {}
    if is_array(t) then
      for i, v in ipairs(t) do parts[i] = encode(v, seen) end
      seen[t] = nil
      return '[' .. table.concat(parts, ',') .. ']'
    end
    local keys = {}
    for k in pairs(t) do
      if type(k) ~= 'string' and type(k) ~= 'number' then
        error('json.encode: object keys must be strings, got '
          .. type(k), 0)
      end
      keys[#keys + 1] = tostring(k)
    end
    table.sort(keys)
    for i, k in ipairs(keys) do
      local v = t[k]
      if v == nil then v = t[tonumber(k)] end
      parts[i] = quote(k) .. ':' .. encode(v, seen)
    end
    seen[t] = nil
    return '{' .. table.concat(parts, ',') .. '}'
  end

  function encode(v, seen)
    local ty = type(v)
    if ty == 'nil' then return 'null' end
    if ty == 'boolean' then return tostring(v) end
    if ty == 'number' then return number(v) end
    if ty == 'string' then return quote(v) end
    if ty == 'table' then return encode_table(v, seen) end
    error('json.encode: cannot encode a ' .. ty, 0)
  end

  json.encode = ebl.doc(function(v) return encode(v, {}) end,
    'json.encode(value) -> JSON text: tables with keys 1..n become '
    .. 'arrays, others objects (keys sorted); NaN and Inf become null.')

  ---------------------------------------------------------------------
  -- Decoding

  local function fail(s, pos, what)
    error(('json.decode: %s at byte %d'):format(what, pos), 0)
  end

  local function skip(s, pos)
    return s:find('[^ \t\r\n]', pos) or #s + 1
  end

  local decode_value

  -- A \u escape at pos (after the backslash and 'u') as UTF-8.
  local function unicode(s, pos)
    local hex = s:match('^%x%x%x%x', pos)
    if not hex then fail(s, pos, 'bad \\u escape') end
    local code = tonumber(hex, 16)
    pos = pos + 4
    if code >= 0xD800 and code < 0xDC00 then
      local low = s:match('^\\u(%x%x%x%x)', pos)
      if not low then fail(s, pos, 'lone surrogate') end
      code = 0x10000 + (code - 0xD800) * 0x400 + tonumber(low, 16) - 0xDC00
      pos = pos + 6
    end
    return utf8.char(code), pos
  end

  local UNESCAPE = {['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b',
    f = '\f', n = '\n', r = '\r', t = '\t'}

  local function decode_string(s, pos)
    local parts = {}
    pos = pos + 1
    while true do
      local stop = s:find('["\\%c]', pos)
      if not stop then fail(s, pos, 'unterminated string') end
      parts[#parts + 1] = s:sub(pos, stop - 1)
      local c = s:sub(stop, stop)
      if c == '"' then return table.concat(parts), stop + 1 end
      if c ~= '\\' then fail(s, stop, 'control byte in a string') end
      local e = s:sub(stop + 1, stop + 1)
      if e == 'u' then
        parts[#parts + 1], pos = unicode(s, stop + 2)
      elseif UNESCAPE[e] then
        parts[#parts + 1], pos = UNESCAPE[e], stop + 2
      else
        fail(s, stop, 'bad escape')
      end
    end
  end

  local function decode_number(s, pos)
    local text = s:match('^-?%d+%.?%d*[eE]?[-+]?%d*', pos)
    local v = text and tonumber(text)
    if v == nil then fail(s, pos, 'expected a value') end
    return v, pos + #text
  end

  local function decode_list(s, pos, close, item)
    pos = skip(s, pos + 1)
    if s:sub(pos, pos) == close then return pos + 1 end
    while true do
      pos = item(pos)
      pos = skip(s, pos)
      local c = s:sub(pos, pos)
      if c == close then return pos + 1 end
      if c ~= ',' then fail(s, pos, "expected ',' or '" .. close .. "'") end
      pos = skip(s, pos + 1)
    end
  end

  local function decode_array(s, pos)
    local t = {}
    pos = decode_list(s, pos, ']', function(p)
      local v
      v, p = decode_value(s, p)
      t[#t + 1] = v
      return p
    end)
    return t, pos
  end

  local function decode_object(s, pos)
    local t = {}
    pos = decode_list(s, pos, '}', function(p)
      if s:sub(p, p) ~= '"' then fail(s, p, 'expected a string key') end
      local k
      k, p = decode_string(s, p)
      p = skip(s, p)
      if s:sub(p, p) ~= ':' then fail(s, p, "expected ':'") end
      local v
      v, p = decode_value(s, skip(s, p + 1))
      t[k] = v
      return p
    end)
    return t, pos
  end

  local WORDS = {['true'] = true, ['false'] = false}

  function decode_value(s, pos)
    pos = skip(s, pos)
    local c = s:sub(pos, pos)
    if c == '{' then return decode_object(s, pos) end
    if c == '[' then return decode_array(s, pos) end
    if c == '"' then return decode_string(s, pos) end
    for word, v in pairs(WORDS) do
      if s:sub(pos, pos + #word - 1) == word then return v, pos + #word end
    end
    if s:sub(pos, pos + 3) == 'null' then return nil, pos + 4 end
    return decode_number(s, pos)
  end

  json.decode = ebl.doc(function(s)
    if type(s) ~= 'string' then
      error("bad argument #1 to 'decode' (string expected, got "
        .. type(s) .. ')', 2)
    end
    local v, pos = decode_value(s, 1)
    pos = skip(s, pos)
    if pos <= #s then fail(s, pos, 'text after the value') end
    return v
  end, 'json.decode(text) -> the value (null becomes nil; integers '
    .. 'without a fraction or exponent stay integers).')

  return json
end
