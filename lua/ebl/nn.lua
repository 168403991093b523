-- Layers for the edges of a graph: each owns its parameters (tensors) and
-- describes itself as engine ops (see src/engine/op.h). ebl.nn.chain
-- composes layers into the function of one edge.
return function(ebl)
  local nn = {}
  local Layer = {}
  Layer.__index = Layer
  Layer.__name = 'ebl.nn.Layer'

  local function layer(t)
    return setmetatable(t, Layer)
  end

  -- Uniform in [-bound, bound): the default initialisation of weights.
  local function uniform(shape, bound, dtype)
    local u = ebl.rand(shape, {dtype = dtype or 'float32'})
    return u * (2 * bound) - bound
  end

  local function check_int(fn, i, v, min)
    if math.type(v) ~= 'integer' or v < min then
      error(("bad argument #%d to '%s' (integer >= %d expected, got %s)")
        :format(i, fn, min, tostring(v)), 3)
    end
  end

  -- Checks option `name` of layer function fn: nil, an integer >= min or
  -- a pair {h, w} of them (sizes up to 2^20, as the kernels take).
  local function check_pair(fn, name, v, min)
    local function fits(x)
      return math.type(x) == 'integer' and x >= min and x <= 1 << 20
    end
    if v == nil or fits(v) then return end
    if type(v) == 'table' and #v == 2 and fits(v[1]) and fits(v[2]) then
      return
    end
    local shown = tostring(v)
    if type(v) == 'table' then
      local items = {}
      for i = 1, #v do items[i] = tostring(v[i]) end
      shown = '{' .. table.concat(items, ', ') .. '}'
    end
    error(("%s: option '%s' must be an integer >= %d or a pair {h, w} "
      .. "of them, got %s"):format(fn, name, min, shown), 4)
  end

  -- The parameters of a layer, weight before bias.
  function Layer:params()
    local out = {}
    for _, l in ipairs(self.layers or {self}) do
      if l.weight then out[#out + 1] = l.weight end
      if l.bias then out[#out + 1] = l.bias end
    end
    return out
  end

  -- The layers of a chain, or the layer alone.
  function Layer:flat()
    return self.layers or {self}
  end

  function Layer:__tostring()
    if self.layers then
      local names = {}
      for i, l in ipairs(self.layers) do names[i] = tostring(l) end
      return 'chain(' .. table.concat(names, ', ') .. ')'
    end
    return self.text or self.kind
  end

  function nn.linear(n_in, n_out, opts)
    check_int('linear', 1, n_in, 1)
    check_int('linear', 2, n_out, 1)
    opts = opts or {}
    local bound = 1 / math.sqrt(n_in)
    local l = layer{kind = 'linear', n_in = n_in, n_out = n_out,
      text = ('linear(%d, %d)'):format(n_in, n_out)}
    l.weight = uniform({n_out, n_in}, bound, opts.dtype)
    if opts.bias ~= false then l.bias = uniform({n_out}, bound, opts.dtype) end
    return l
  end

  -- Shared by conv2d and conv_transpose2d: options and initialisation.
  local function conv(kind, fn, c_in, c_out, k, opts)
    check_int(fn, 1, c_in, 1)
    check_int(fn, 2, c_out, 1)
    opts = opts or {}
    local kh, kw = k, k
    if type(k) == 'table' then kh, kw = k[1], k[2] end
    check_int(fn, 3, kh, 1)
    check_int(fn, 3, kw, 1)
    check_pair(fn, 'stride', opts.stride, 1)
    check_pair(fn, 'padding', opts.padding, 0)
    check_pair(fn, 'dilation', opts.dilation, 1)
    check_pair(fn, 'output_padding', opts.output_padding, 0)
    local groups = opts.groups or 1
    if math.type(groups) ~= 'integer' or groups < 1 then
      error(("%s: option 'groups' must be an integer >= 1, got %s")
        :format(fn, tostring(groups)), 3)
    end
    if c_in % groups ~= 0 or c_out % groups ~= 0 then
      error(("%s: groups %d must divide channels %d and %d")
        :format(fn, groups, c_in, c_out), 3)
    end
    local l = layer{kind = kind, stride = opts.stride or 1,
      padding = opts.padding or 0, dilation = opts.dilation or 1,
      groups = groups, output_padding = opts.output_padding or 0,
      text = ('%s(%d, %d, %dx%d)'):format(fn, c_in, c_out, kh, kw)}
    local shape, fan_in
    if kind == 'conv2d' then
      shape, fan_in = {c_out, c_in // groups, kh, kw}, c_in // groups * kh * kw
    else
      shape, fan_in = {c_in, c_out // groups, kh, kw}, c_out // groups * kh * kw
    end
    local bound = 1 / math.sqrt(fan_in)
    l.weight = uniform(shape, bound, opts.dtype)
    if opts.bias ~= false then l.bias = uniform({c_out}, bound, opts.dtype) end
    return l
  end

  function nn.conv2d(c_in, c_out, k, opts)
    return conv('conv2d', 'conv2d', c_in, c_out, k, opts)
  end

  function nn.conv_transpose2d(c_in, c_out, k, opts)
    return conv('conv_transpose2d', 'conv_transpose2d', c_in, c_out, k, opts)
  end

  local function pool(kind, k, stride, padding)
    check_int(kind, 1, type(k) == 'table' and k[1] or k, 1)
    check_pair(kind, 'kernel', k, 1)
    check_pair(kind, 'stride', stride, 1)
    check_pair(kind, 'padding', padding, 0)
    return layer{kind = kind, kernel = k, stride = stride or k,
      padding = padding or 0, text = ('%s(%s)'):format(kind, tostring(
        type(k) == 'table' and k[1] .. 'x' .. k[2] or k))}
  end

  function nn.max_pool2d(k, stride, padding)
    return pool('max_pool2d', k, stride, padding)
  end

  function nn.avg_pool2d(k, stride, padding)
    return pool('avg_pool2d', k, stride, padding)
  end

  function nn.flatten()
    return layer{kind = 'flatten', text = 'flatten'}
  end

  function nn.identity()
    return layer{kind = 'identity', text = 'identity'}
  end

  for _, name in ipairs{'tanh', 'sigmoid', 'relu', 'gelu', 'softplus'} do
    nn[name] = function()
      return layer{kind = 'activation', act = name, text = name}
    end
  end

  function nn.leaky_relu(slope)
    return layer{kind = 'activation', act = 'leaky_relu',
      slope = slope or 0.01, text = 'leaky_relu'}
  end

  function nn.chain(...)
    local layers = {}
    for i = 1, select('#', ...) do
      local l = select(i, ...)
      if getmetatable(l) ~= Layer then
        error(("bad argument #%d to 'chain' (layer expected, got %s)")
          :format(i, type(l)), 2)
      end
      for _, inner in ipairs(l:flat()) do layers[#layers + 1] = inner end
    end
    return layer{kind = 'chain', layers = layers}
  end

  function nn.is_layer(v)
    return getmetatable(v) == Layer
  end

  local docs = {
    linear = 'linear(n_in, n_out [, {bias=true, dtype=}]): y = x W^T + b '
      .. 'with W (n_out x n_in). Initialised uniform in +-1/sqrt(n_in).',
    conv2d = 'conv2d(c_in, c_out, k [, {stride=, padding=, dilation=, '
      .. 'groups=, bias=}]): weight (c_out, c_in/groups, kh, kw), '
      .. 'initialised uniform in +-1/sqrt(fan_in).',
    conv_transpose2d = 'conv_transpose2d(c_in, c_out, k [, {...}]): '
      .. 'weight (c_in, c_out/groups, kh, kw), uniform +-1/sqrt(fan_in).',
    max_pool2d = 'max_pool2d(k [, stride=k [, padding=0]]): no parameters.',
    avg_pool2d = 'avg_pool2d(k [, stride=k [, padding=0]]): no parameters.',
    flatten = 'flatten(): (c, h, w) states to vectors.',
    identity = 'identity(): passes the state unchanged.',
    tanh = 'tanh(): activation layer.', sigmoid = 'sigmoid(): activation.',
    relu = 'relu(): activation.', gelu = 'gelu(): activation (erf form).',
    softplus = 'softplus(): activation.',
    leaky_relu = 'leaky_relu([slope=0.01]): activation.',
    chain = 'chain(l1, l2, ...): the layers applied in order, as the '
      .. 'function of one edge.',
  }
  for name, text in pairs(docs) do ebl.doc(nn[name], text) end
  nn.Layer = Layer
  return nn
end
