-- Builders of the networks of the paper's Table 1 (and an MLP), as graphs
-- on which ebl.model runs any energy. Every builder takes width= to
-- scale its channel counts for machines smaller than the paper's.
return function(ebl)
  local nn = ebl.nn
  local models = {}

  local function scaled(c, width)
    return math.max(1, math.floor(c * (width or 1) + 0.5))
  end

  local function conv3(c_in, c_out, opts)
    return nn.conv2d(c_in, c_out, 3, {padding = 1,
      stride = opts and opts.stride, dtype = opts and opts.dtype})
  end

  local function act(name)
    return nn[name or 'tanh']()
  end

  -- mlp{sizes={784, 256, 256, 10}, act='tanh', dtype=, act_on='edge'}:
  -- a chain of linear layers, the activation on every hidden node, the
  -- output linear (its state the logits). act_on='node' puts the
  -- activation in the hidden nodes instead of the edges, leaving every
  -- edge linear, as EP needs.
  function models.mlp(opts)
    opts = opts or {}
    local sizes = opts.sizes or {784, 256, 256, 10}
    local on_node = opts.act_on == 'node'
    local g = ebl.graph()
    local prev = g:node{name = 'x', shape = {sizes[1]}, role = 'input'}
    for i = 2, #sizes do
      local last = i == #sizes
      local node = g:node{name = last and 'y' or ('h' .. (i - 1)),
        shape = {sizes[i]}, role = last and 'output' or nil,
        activation = on_node and not last and (opts.act or 'tanh') or nil}
      local lin = nn.linear(sizes[i - 1], sizes[i], {dtype = opts.dtype})
      local plain = last or on_node
      g:edge(prev, node, plain and lin or nn.chain(lin, act(opts.act)))
      prev = node
    end
    return g
  end

  -- A small VGG-style network: per block two 3x3 convolutions (padding
  -- 1) with the activation, 2x2 max pooling after the second; then a
  -- fully connected hidden layer and the output. One node per layer.
  function models.cnn(opts)
    opts = opts or {}
    local w, size = opts.width, opts.size or 28
    local c = opts.channels or 1
    local g = ebl.graph()
    local prev = g:node{name = 'x', shape = {c, size, size}, role = 'input'}
    for b, channels in ipairs(opts.blocks or {32, 64}) do
      local c_out = scaled(channels, w)
      for j = 1, 2 do
        local conv = conv3(c, c_out, opts)
        local chain = j == 2
          and nn.chain(conv, act(opts.act), nn.max_pool2d(2))
          or nn.chain(conv, act(opts.act))
        if j == 2 then size = size // 2 end
        local node = g:node{name = ('c%d_%d'):format(b, j),
          shape = {c_out, size, size}}
        g:edge(prev, node, chain)
        prev, c = node, c_out
      end
    end
    local hidden = scaled(opts.hidden or 128, w)
    local fc = g:node{name = 'fc', shape = {hidden}}
    g:edge(prev, fc, nn.chain(nn.flatten(),
      nn.linear(c * size * size, hidden, {dtype = opts.dtype}),
      act(opts.act)))
    local classes = opts.classes or 10
    local y = g:node{name = 'y', shape = {classes}, role = 'output'}
    g:edge(fc, y, nn.linear(hidden, classes, {dtype = opts.dtype}))
    return g
  end

  -- The hierarchical feedforward network: nine convolutions (3x3 and
  -- 1x1, tanh, 2x2 max pooling after the 2nd, 3rd, 4th and 9th) and two
  -- fully connected layers; one node per layer after the input.
  local HIERARCHICAL = {
    {128, 3}, {256, 3, pool = true}, {512, 3, pool = true},
    {120, 3, pool = true}, {256, 1}, {80, 1}, {64, 3}, {100, 3},
    {50, 3, pool = true},
  }

  function models.hierarchical(opts)
    opts = opts or {}
    local w, size = opts.width, opts.size or 32
    local g = ebl.graph()
    local c = opts.channels or 3
    local prev = g:node{name = 'x', shape = {c, size, size}, role = 'input'}
    for i, layer in ipairs(HIERARCHICAL) do
      local c_out = scaled(layer[1], w)
      local k = layer[2]
      local conv = nn.conv2d(c, c_out, k, {padding = k // 2,
        dtype = opts.dtype})
      local chain = layer.pool
        and nn.chain(conv, act(opts.act), nn.max_pool2d(2))
        or nn.chain(conv, act(opts.act))
      if layer.pool then size = size // 2 end
      local node = g:node{name = 'n' .. i, shape = {c_out, size, size}}
      g:edge(prev, node, chain)
      prev, c = node, c_out
    end
    local hidden = scaled(512, w)
    local fc = g:node{name = 'fc', shape = {hidden}}
    g:edge(prev, fc, nn.chain(nn.flatten(),
      nn.linear(c * size * size, hidden, {dtype = opts.dtype}),
      act(opts.act)))
    local y = g:node{name = 'y', shape = {opts.classes or 10},
      role = 'output'}
    g:edge(fc, y, nn.linear(hidden, opts.classes or 10,
      {dtype = opts.dtype}))
    return g
  end

  -- The simple skip-connection recurrent network: nodes 1..6 with one
  -- state each; node i feeds i+1 (forward), i+2 (skip, from node 2 on)
  -- and itself at the next time step (recurrent, nodes 2..6); node 7
  -- reads node 6 out through a fully connected layer. recurrent=false
  -- and skip=false leave those edges out (the variants of Fig. 4).
  local SIMPLE = {64, 128, 256, 512, 200, 32}

  function models.skiprec_simple(opts)
    opts = opts or {}
    local w, size = opts.width, opts.size or 32
    local g = ebl.graph()
    local c_in = opts.channels or 3
    local nodes = {[0] = g:node{name = 'x', shape = {c_in, size, size},
      role = 'input'}}
    local ch = {[0] = c_in}
    for i, c in ipairs(SIMPLE) do
      ch[i] = scaled(c, w)
      nodes[i] = g:node{name = 'n' .. i, shape = {ch[i], size, size},
        activation = opts.act or 'tanh'}
    end
    for i = 1, #SIMPLE do
      g:edge(nodes[i - 1], nodes[i], conv3(ch[i - 1], ch[i], opts))
      if i >= 2 and opts.recurrent ~= false then
        g:edge(nodes[i], nodes[i], conv3(ch[i], ch[i], opts),
          {kind = 'recurrent'})
      end
      if i >= 2 and i + 2 <= #SIMPLE and opts.skip ~= false then
        g:edge(nodes[i], nodes[i + 2], conv3(ch[i], ch[i + 2], opts),
          {kind = 'skip'})
      end
    end
    local classes = opts.classes or 10
    local y = g:node{name = 'y', shape = {classes}, role = 'output'}
    g:edge(nodes[#SIMPLE], y, nn.chain(nn.flatten(),
      nn.linear(ch[#SIMPLE] * size * size, classes, {dtype = opts.dtype})))
    return g
  end

  -- The complex version: nodes 2..6 hold two states, a (what arrives)
  -- and b (after an internal 1x1 convolution, pooled 2x2 in nodes 2, 4
  -- and 6); forward and skip edges leave from b, recurrent edges map b
  -- to itself. A skip whose ends differ in size takes stride 2.
  local COMPLEX = {
    {a = 64, b = 128, pool = true}, {a = 256, b = 512},
    {a = 1024, b = 768, pool = true}, {a = 256, b = 128},
    {a = 256, b = 64, pool = true},
  }

  function models.skiprec_complex(opts)
    opts = opts or {}
    local w, size = opts.width, opts.size or 32
    local g = ebl.graph()
    local c_in = opts.channels or 3
    local x = g:node{name = 'x', shape = {c_in, size, size}, role = 'input'}
    local c1 = scaled(32, w)
    local n1 = g:node{name = 'n1', shape = {c1, size, size},
      activation = opts.act or 'tanh'}
    g:edge(x, n1, conv3(c_in, c1, opts))
    local outs = {[1] = {node = n1, c = c1, size = size}}
    for i, spec in ipairs(COMPLEX) do
      local k = i + 1
      local ca, cb = scaled(spec.a, w), scaled(spec.b, w)
      local prev = outs[k - 1]
      local a = g:node{name = 'n' .. k .. 'a', shape = {ca, prev.size,
        prev.size}, activation = opts.act or 'tanh'}
      g:edge(prev.node, a, conv3(prev.c, ca, opts))
      local bsize = spec.pool and prev.size // 2 or prev.size
      local b = g:node{name = 'n' .. k .. 'b', shape = {cb, bsize, bsize},
        activation = opts.act or 'tanh'}
      local internal = nn.conv2d(ca, cb, 1, {dtype = opts.dtype})
      g:edge(a, b, spec.pool and nn.chain(internal, nn.max_pool2d(2))
        or internal, {kind = 'internal'})
      g:edge(b, b, conv3(cb, cb, opts), {kind = 'recurrent'})
      outs[k] = {node = b, c = cb, size = bsize, a = a, ca = ca}
      local from = outs[k - 2]
      if k >= 3 and from.a == nil then from = nil end
      if from then
        local stride = from.size // prev.size
        g:edge(from.node, a, conv3(from.c, ca, {stride = stride,
          dtype = opts.dtype}), {kind = 'skip'})
      end
    end
    local last = outs[#COMPLEX + 1]
    local hidden = scaled(512, w)
    local fc = g:node{name = 'fc', shape = {hidden}}
    g:edge(last.node, fc, nn.chain(nn.flatten(), nn.linear(
      last.c * last.size * last.size, hidden, {dtype = opts.dtype}),
      act(opts.act)))
    local classes = opts.classes or 10
    local y = g:node{name = 'y', shape = {classes}, role = 'output'}
    g:edge(fc, y, nn.linear(hidden, classes, {dtype = opts.dtype}))
    return g
  end

  local docs = {
    mlp = "mlp{sizes={784, 256, 256, 10}, act='tanh', act_on='edge'} -> "
      .. "graph; act_on='node' leaves every edge linear (for EP)",
    cnn = "cnn{channels=1, size=28, classes=10, blocks={32, 64}, "
      .. "hidden=128, width=1, act='tanh'} -> a small VGG-style network: "
      .. 'two 3x3 convolutions per block, 2x2 max pooling after each '
      .. 'block, one hidden fully connected layer',
    hierarchical = 'hierarchical{width=1, size=32, channels=3, '
      .. 'classes=10} -> the hierarchical feedforward network of Table 1',
    skiprec_simple = 'skiprec_simple{width=1, size=32, channels=3, '
      .. 'classes=10, recurrent=true, skip=true} -> the simple '
      .. 'skip-connection recurrent network '
      .. '(use time_steps=5 in ebl.model, as the paper)',
    skiprec_complex = 'skiprec_complex{width=1, ...} -> the complex '
      .. 'version: two states per node joined by internal edges',
  }
  for name, text in pairs(docs) do ebl.doc(models[name], text) end
  return models
end
