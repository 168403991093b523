-- The parts of the tensor vocabulary written in Lua on top of the C
-- binding: cat and stack (narrowed views of one result, copied into).
local M = {}

local SOURCE = debug.getinfo(1, 'S').source

-- Raises Lua's "bad argument" error at the first caller outside this
-- file.
local function bad(arg, fname, msg)
  local level = 2
  while true do
    local info = debug.getinfo(level, 'S')
    if info == nil or info.source ~= SOURCE then break end
    level = level + 1
  end
  error(("bad argument #%d to '%s' (%s)"):format(arg, fname, msg), level)
end

-- The 1-based dim for dim (nil: 1; negative from the end) of ndim
-- dims, or an error.
local function check_dim(ebl, fname, dim, ndim)
  if dim == nil then return 1 end
  if math.type(dim) ~= 'integer' then
    bad(2, fname, ('dim must be an integer, got %s'):format(tostring(dim)))
  end
  if dim < -ndim or dim > ndim or dim == 0 then
    bad(2, fname, ('dim must be in 1..%d or -%d..-1, got %d'):format(
      ndim, ndim, dim))
  end
  return dim > 0 and dim or dim + ndim + 1
end

-- Checks that list is a non-empty sequence of tensors of one dtype and
-- device.
local function check_list(ebl, fname, list)
  if type(list) ~= 'table' then
    bad(1, fname, 'table of tensors expected, got ' .. type(list))
  end
  if #list == 0 then bad(1, fname, 'no tensors given') end
  local first = list[1]
  for i, t in ipairs(list) do
    if not ebl.is_tensor(t) then
      bad(1, fname, ('item %d is a %s, not an ebl.Tensor'):format(i,
        type(t)))
    end
    if t:dtype() ~= first:dtype() or t:device() ~= first:device() then
      bad(1, fname, ('item %d is %s on %s, item 1 %s on %s'):format(i,
        t:dtype(), t:device(), first:dtype(), first:device()))
    end
  end
end

-- Shape as "2x3" for messages.
local function shape_string(shape)
  return #shape == 0 and 'scalar' or table.concat(shape, 'x')
end

-- The shape of cat(list, dim): the first's, with the sizes along dim
-- added up; the others must match it elsewhere.
local function cat_shape(fname, list, dim)
  local shape = list[1]:shape()
  for i = 2, #list do
    local s = list[i]:shape()
    local fits = #s == #shape
    for d = 1, #shape do
      if d ~= dim and s[d] ~= shape[d] then fits = false end
    end
    if not fits then
      bad(1, fname, ('item %d has shape %s, item 1 %s: they differ '
        .. 'outside dim %d'):format(i, shape_string(s),
        shape_string(list[1]:shape()), dim))
    end
    shape[dim] = shape[dim] + s[dim]
  end
  return shape
end

-- ebl.cat(list, dim): tensors joined along dim.
local function cat(ebl, fname, list, dim)
  check_list(ebl, fname, list)
  if list[1]:dim() == 0 then
    bad(1, fname, 'item 1 has no dims (stack joins scalars)')
  end
  dim = check_dim(ebl, fname, dim, list[1]:dim())
  local first = list[1]
  local out = ebl.empty(cat_shape(fname, list, dim),
    { dtype = first:dtype(), device = first:device() })
  local at = 1
  for _, t in ipairs(list) do
    local n = t:size(dim)
    if n > 0 then out:narrow(dim, at, n):copy(t) end
    at = at + n
  end
  return out
end

-- ebl.stack(list, dim): tensors of one shape along a new dim.
local function stack(ebl, list, dim)
  check_list(ebl, 'stack', list)
  local shape = list[1]:shape()
  for i, t in ipairs(list) do
    if shape_string(t:shape()) ~= shape_string(shape) then
      bad(1, 'stack', ('item %d has shape %s, item 1 %s'):format(i,
        shape_string(t:shape()), shape_string(shape)))
    end
  end
  dim = check_dim(ebl, 'stack', dim, #shape + 1)
  local parts = {}
  for i, t in ipairs(list) do parts[i] = t:unsqueeze(dim) end
  return cat(ebl, 'stack', parts, dim)
end

-- Adds the Lua-written functions to the module table.
function M.attach(ebl)
  ebl.cat = ebl.doc(function(list, dim)
    return cat(ebl, 'cat', list, dim)
  end, 'cat(tensors [, dim]) -> the tensors of a table joined along dim '
    .. '(1-based, default 1); they must agree in every other size, in '
    .. 'dtype and in device.\n'
    .. 'Example: ebl.cat({a, b}, 2) -- (2, 3) and (2, 4) give (2, 7)')
  ebl.stack = ebl.doc(function(list, dim)
    return stack(ebl, list, dim)
  end, 'stack(tensors [, dim]) -> tensors of one shape joined along a new '
    .. 'dim (1-based, 1..dim()+1, default 1).\n'
    .. 'Example: ebl.stack{x1, x2, x3} -- three (4) give (3, 4)')
end

return M
