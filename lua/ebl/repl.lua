-- The Lua side of the ebl> prompt: how values are shown and what Tab
-- completes. The C host (src/host/repl.c) calls show() and complete().
local M = {}

local colour = false
local MAX_DEPTH = 3      -- nested tables shown this deep, then {...}
local MAX_ITEMS = 40     -- entries shown per table, then a count
local WIDTH = 78         -- a table fitting this width goes on one line

-- Results are held weakly: a big value shown at the prompt can still be
-- collected. `_` reads the first value of the last result.
M.results = setmetatable({}, { __mode = 'v' })

local COLOURS = {
  number = '36', string = '32', boolean = '35', ['nil'] = '35',
  ['function'] = '2', userdata = '0', table = '0', thread = '2',
}

local function paint(kind, s)
  local c = COLOURS[kind]
  if not colour or c == nil or c == '0' then return s end
  return '\27[' .. c .. 'm' .. s .. '\27[0m'
end

local format

-- A key as it would be written in a table constructor.
local function format_key(k)
  if type(k) == 'string' and k:match('^[%a_][%w_]*$') then return k end
  return '[' .. format(k, 0, {}, '') .. ']'
end

-- Keys in display order: the array part, then the others sorted.
local function sorted_keys(t)
  local n = #t
  local rest = {}
  for k in next, t do
    if not (math.type(k) == 'integer' and k >= 1 and k <= n) then
      rest[#rest + 1] = k
    end
  end
  table.sort(rest, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == 'number' or ta == 'string' then return a < b end
    return tostring(a) < tostring(b)
  end)
  return n, rest
end

-- Formats a table: one line when it fits, else one entry per line.
local function format_table(t, depth, seen, indent)
  if seen[t] then return paint('table', '<cycle>') end
  if depth >= MAX_DEPTH then return '{...}' end
  seen[t] = true
  local n, rest = sorted_keys(t)
  local items, shown = {}, 0
  local inner = indent .. '  '
  for i = 1, n do
    if shown >= MAX_ITEMS then break end
    items[#items + 1] = format(t[i], depth + 1, seen, inner)
    shown = shown + 1
  end
  for _, k in ipairs(rest) do
    if shown >= MAX_ITEMS then break end
    items[#items + 1] = format_key(k) .. ' = '
      .. format(t[k], depth + 1, seen, inner)
    shown = shown + 1
  end
  local total = n + #rest
  if total > shown then
    items[#items + 1] = ('... (%d more)'):format(total - shown)
  end
  seen[t] = nil
  if #items == 0 then return '{}' end
  local line = '{' .. table.concat(items, ', ') .. '}'
  if #line + #indent <= WIDTH and not line:find('\n') then return line end
  return '{\n' .. inner .. table.concat(items, ',\n' .. inner)
    .. '\n' .. indent .. '}'
end

-- Formats any value readably; userdata and objects go through
-- __tostring.
function format(v, depth, seen, indent)
  local kind = type(v)
  if kind == 'string' then
    return paint(kind, ('%q'):format(v):gsub('\\\n', '\\n'))
  elseif kind == 'table' then
    local mt = getmetatable(v)
    if type(mt) == 'table' and rawget(mt, '__tostring') then
      return tostring(v)
    end
    return format_table(v, depth, seen, indent)
  end
  return paint(kind, tostring(v))
end

function M.format(v)
  return format(v, 0, {}, '')
end

-- Prints the values of an expression typed at the prompt.
function M.show(...)
  local n = select('#', ...)
  for i = 1, math.max(n, #M.results) do M.results[i] = nil end
  local parts = {}
  for i = 1, n do
    local v = select(i, ...)
    M.results[i] = v
    parts[i] = M.format(v)
  end
  io.write(table.concat(parts, '\t'), '\n')
end

-- Called once when the prompt starts.
function M.setup(opts)
  colour = opts.colour and true or false
  if getmetatable(_G) == nil then
    setmetatable(_G, { __index = function(_, k)
      if k == '_' then return M.results[1] end
    end })
  end
end

------------------------------------------------------------------------
-- Completion

local KEYWORDS = {
  'and', 'break', 'do', 'else', 'elseif', 'end', 'false', 'for',
  'function', 'goto', 'if', 'in', 'local', 'nil', 'not', 'or', 'repeat',
  'return', 'then', 'true', 'until', 'while',
}

-- The fields of v, name -> value, as far as indexing reaches without
-- calling any __index function: v itself, then the chain of __index
-- tables. Where __index is a function, methods are looked for in the
-- metatable itself and in its __methods table.
local function fields(v)
  local out, seen = {}, {}
  local function add(t, skip_meta)
    for k, x in next, t do
      if type(k) == 'string' and out[k] == nil
          and not (skip_meta and k:match('^__')) then
        out[k] = x
      end
    end
  end
  while v ~= nil and not seen[v] do
    seen[v] = true
    if type(v) == 'table' then add(v, false) end
    local mt = getmetatable(v)
    if type(mt) ~= 'table' then break end
    local idx = rawget(mt, '__index')
    if type(idx) == 'function' then
      add(mt, true)
      v = rawget(mt, '__methods')
    else
      v = idx
    end
  end
  return out
end

-- Resolves a dotted path of names ("ebl.nn") without side effects.
local function resolve(path)
  local v = _G
  for name in path:gmatch('[^%.]+') do
    if not name:match('^[%a_][%w_]*$') then return nil end
    v = fields(v)[name]
    if v == nil then return nil end
  end
  return v
end

-- What to append after a completed name.
local function suffix(v)
  local kind = type(v)
  if kind == 'function' then return '(' end
  local mt = getmetatable(v)
  local has_methods = type(mt) == 'table' and rawget(mt, '__index') ~= nil
  if kind == 'table' then return has_methods and ':' or '.' end
  if kind == 'userdata' and has_methods then return ':' end
  return ''
end

-- Completions of text ("ebl.ze", "t:sh", "pri"), each the whole text.
function M.complete(text)
  local prefix, sep, partial = text:match('^(.*)([%.:])([%w_]*)$')
  local base
  if prefix == nil then
    prefix, sep, partial, base = '', '', text, _G
  else
    base = resolve(prefix)
    if base == nil then return {} end
  end
  local out = {}
  for k, v in pairs(fields(base)) do
    if k:sub(1, #partial) == partial and k:match('^[%a_][%w_]*$')
        and (partial:match('^_') or not k:match('^_'))
        and (sep ~= ':' or type(v) == 'function') then
      out[#out + 1] = prefix .. sep .. k .. suffix(v)
    end
  end
  if sep == '' then
    for _, k in ipairs(KEYWORDS) do
      if k:sub(1, #partial) == partial then out[#out + 1] = k end
    end
  end
  table.sort(out)
  return out
end

return M
