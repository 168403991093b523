-- Shared by the figure scripts: flags, data files and gnuplot. Loaded
-- with dofile from the script's folder; returns a table of helpers.
local ebl = require 'ebl'
local plot = {}

-- Flags as --name value into a copy of defaults (numbers stay numbers).
function plot.flags(args, defaults, usage)
  local cfg = {}
  for k, v in pairs(defaults) do cfg[k] = v end
  local i = 1
  while i <= #args do
    local name = args[i]:match('^%-%-([%w%-]+)$')
    local key = name and name:gsub('%-', '_')
    if name == 'help' then
      print(usage)
      os.exit(0)
    end
    if key == nil or defaults[key] == nil or args[i + 1] == nil then
      io.stderr:write(('%s: bad argument %s\n\n%s\n'):format(arg[0],
        args[i], usage))
      os.exit(1)
    end
    local v = args[i + 1]
    if type(defaults[key]) == 'number' then
      v = tonumber(v)
      if v == nil then
        io.stderr:write(('%s: --%s needs a number\n'):format(arg[0], name))
        os.exit(1)
      end
      v = math.tointeger(v) or v
    end
    cfg[key] = v
    i = i + 2
  end
  return cfg
end

local READERS = {['fashion-mnist'] = 'fashion_mnist', mnist = 'mnist',
  cifar10 = 'cifar10', cifar100 = 'cifar100',
  ['tiny-imagenet'] = 'tiny_imagenet'}

-- The dataset named by cfg.data (in cfg.data_dir when not '').
function plot.dataset(cfg)
  local reader = READERS[cfg.data]
  if reader == nil then
    error(('unknown dataset %s'):format(cfg.data), 0)
  end
  return ebl.data[reader](cfg.data_dir ~= '' and cfg.data_dir or nil)
end

-- Writes columns (a list of rows of numbers) to path, with a header.
function plot.write_data(path, header, rows)
  local f = assert(io.open(path, 'w'))
  f:write('# ', header, '\n')
  for _, row in ipairs(rows) do
    local cells = {}
    for i, v in ipairs(row) do cells[i] = ('%.10g'):format(v) end
    f:write(table.concat(cells, ' '), '\n')
  end
  f:close()
end

-- Runs gnuplot on script text (a PNG of size, default '900,600'); says
-- where the data is when gnuplot is not installed. Returns true when
-- the PNG was drawn.
function plot.gnuplot(script, png, data, size)
  if not os.execute('command -v gnuplot > /dev/null 2>&1') then
    print(('gnuplot is not installed (apt-get install gnuplot-nox); the '
      .. 'data is in %s'):format(data))
    return false
  end
  local path = png .. '.gp'
  local f = assert(io.open(path, 'w'))
  f:write(('set terminal pngcairo size %s noenhanced\n'):format(
    size or '900,600'))
  f:write(('set output %q\n'):format(png))
  f:write(script)
  f:close()
  local ok = os.execute(('gnuplot %q'):format(path))
  os.remove(path)
  if not ok then error('gnuplot failed on ' .. png, 0) end
  print('written: ' .. png)
  return true
end

-- Runs main(args), turning errors into a message and exit status 1.
function plot.main(main)
  local ok, err = pcall(main, arg or {})
  if not ok then
    io.stderr:write(arg[0], ': ', tostring(err), '\n')
    os.exit(1)
  end
end

return plot
