-- Graphs of nodes (states) and edges (layer chains between them): what
-- ebl.model compiles into the engine. Shapes are checked as edges are
-- added; cycles without delay when the model is built.
return function(ebl)
  local Graph = {}
  Graph.__index = Graph
  Graph.__name = 'ebl.Graph'

  local ROLES = {input = true, output = true, hidden = true}
  local KINDS = {forward = true, skip = true, recurrent = true,
                 internal = true}

  local function shape_text(shape)
    local parts = {}
    for i, n in ipairs(shape) do parts[i] = tostring(n) end
    return #parts == 0 and 'scalar' or table.concat(parts, 'x')
  end

  -- The engine ops of a layer or chain; param(t) gives a tensor's index.
  local function lower(fn, param)
    local ops = {}
    for _, l in ipairs(fn:flat()) do
      local op = {kind = l.kind}
      if l.kind == 'flatten' then op.kind = 'reshape' end
      for _, k in ipairs{'stride', 'padding', 'dilation', 'groups',
                         'output_padding', 'kernel', 'act', 'slope'} do
        op[k] = l[k]
      end
      if l.weight then op.weight = param(l.weight) end
      if l.bias then op.bias = param(l.bias) end
      ops[#ops + 1] = op
    end
    return ops
  end

  function ebl.graph()
    return setmetatable({nodes = {}, edges = {}, by_name = {}}, Graph)
  end

  local function check_shape(shape)
    if type(shape) ~= 'table' or #shape == 0 then return false end
    for _, n in ipairs(shape) do
      if math.type(n) ~= 'integer' or n < 1 then return false end
    end
    return #shape <= 7
  end

  -- g:node{name=, shape=, role='input'|'output', activation=}
  function Graph:node(spec)
    if type(spec) ~= 'table' then
      error("bad argument #1 to 'node' (table expected, got "
        .. type(spec) .. ")", 2)
    end
    local name = spec.name or ('node' .. (#self.nodes + 1))
    if type(name) ~= 'string' then
      error("node: name must be a string, got " .. type(name), 2)
    end
    if self.by_name[name] then
      error(("node: a node named '%s' exists already"):format(name), 2)
    end
    if not check_shape(spec.shape) then
      error(("node '%s': shape must be a table of 1 to 7 positive "
        .. "integers"):format(name), 2)
    end
    local role = spec.role or 'hidden'
    if not ROLES[role] then
      error(("node '%s': role must be 'input' or 'output', got '%s'")
        :format(name, tostring(role)), 2)
    end
    local node = {index = #self.nodes + 1, name = name, role = role,
      shape = {table.unpack(spec.shape)}, activation = spec.activation,
      slope = spec.slope}
    self.nodes[#self.nodes + 1] = node
    self.by_name[name] = node
    return node
  end

  local function resolve(self, v, i)
    local node = type(v) == 'string' and self.by_name[v] or v
    if type(node) ~= 'table' or self.nodes[node.index] ~= node then
      error(("bad argument #%d to 'edge' (node of this graph expected, "
        .. "got %s)"):format(i, tostring(v)), 3)
    end
    return node
  end

  -- g:edge(src, dst, fn, {kind='forward', delay=0})
  function Graph:edge(src, dst, fn, opts)
    src, dst = resolve(self, src, 1), resolve(self, dst, 2)
    if not ebl.nn.is_layer(fn) then
      error("bad argument #3 to 'edge' (layer or ebl.nn.chain expected, "
        .. "got " .. type(fn) .. ")", 2)
    end
    opts = opts or {}
    local kind = opts.kind or (opts.delay and opts.delay > 0
      and 'recurrent' or 'forward')
    if not KINDS[kind] then
      error(("edge: kind must be forward, skip, recurrent or internal, "
        .. "got '%s'"):format(tostring(kind)), 2)
    end
    local delay = opts.delay or (kind == 'recurrent' and 1 or 0)
    if math.type(delay) ~= 'integer' or delay < 0 then
      error("edge: delay must be an integer >= 0, got " .. tostring(delay),
        2)
    end
    local params = {}
    local ops = lower(fn, function(t)
      params[#params + 1] = t
      return #params
    end)
    local context = ('edge %s -> %s'):format(src.name, dst.name)
    local ok, out = pcall(ebl._chain_shape, ops, params, src.shape,
      context)
    if not ok then error(out, 2) end
    if shape_text(out) ~= shape_text(dst.shape) then
      error(("%s: the edge gives shape %s, node '%s' has shape %s")
        :format(context, shape_text(out), dst.name, shape_text(dst.shape)),
        2)
    end
    local edge = {index = #self.edges + 1, src = src, dst = dst, fn = fn,
      kind = kind, delay = delay}
    self.edges[#self.edges + 1] = edge
    return edge
  end

  -- The node-by-node matrix of edge indices (0: no edge), as int32.
  function Graph:adjacency()
    local n = #self.nodes
    local a = ebl.zeros({n, n}, {dtype = 'int32'})
    for _, e in ipairs(self.edges) do
      a[e.src.index][e.dst.index] = e.index
    end
    return a
  end

  local function numel(shape)
    local n = 1
    for _, s in ipairs(shape) do n = n * s end
    return n
  end

  -- Prints nodes, edges, shapes, parameter counts and the memory the
  -- states of a batch take (batch 128, float32, unless told).
  function Graph:summary(opts)
    opts = opts or {}
    local batch, T = opts.batch or 128, opts.time_steps or 1
    local lines, total, states = {}, 0, 0
    lines[#lines + 1] = ('%-4s %-12s %-8s %-14s %s'):format('node', 'name',
      'role', 'shape', 'activation')
    for _, nd in ipairs(self.nodes) do
      lines[#lines + 1] = ('%-4d %-12s %-8s %-14s %s'):format(nd.index,
        nd.name, nd.role, shape_text(nd.shape), nd.activation or '')
      states = states + numel(nd.shape)
    end
    lines[#lines + 1] = ('%-4s %-22s %-10s %-6s %-10s %s'):format('edge',
      'from -> to', 'kind', 'delay', 'params', 'function')
    for _, e in ipairs(self.edges) do
      local count = 0
      for _, p in ipairs(e.fn:params()) do count = count + p:numel() end
      total = total + count
      lines[#lines + 1] = ('%-4d %-22s %-10s %-6d %-10d %s'):format(e.index,
        e.src.name .. ' -> ' .. e.dst.name, e.kind, e.delay, count,
        tostring(e.fn))
    end
    local mib = states * batch * T * 4 / 2^20
    lines[#lines + 1] = ('%d nodes, %d edges, %d parameters; states of a '
      .. 'batch of %d over %d step(s): %.2f MiB'):format(#self.nodes,
      #self.edges, total, batch, T, mib)
    local text = table.concat(lines, '\n')
    if opts.quiet then return text end
    print(text)
  end

  Graph.lower = lower
  ebl.Graph = Graph
  ebl.doc(ebl.graph, 'graph() -> an empty graph; add g:node{...} and '
    .. 'g:edge(src, dst, fn, {kind=, delay=}), then ebl.model(g, {...}).')
  ebl.doc(Graph.node, "g:node{name=, shape={...}, role='input'|'output', "
    .. "activation=}: adds a node (hidden when no role).")
  ebl.doc(Graph.edge, "g:edge(src, dst, fn, {kind='forward'|'skip'|"
    .. "'recurrent'|'internal', delay=}): adds an edge; shapes are checked.")
  ebl.doc(Graph.adjacency, 'g:adjacency() -> int32 matrix of edge indices '
    .. '(0: none), rows the source nodes.')
  ebl.doc(Graph.summary, 'g:summary([{batch=128, time_steps=1}]) prints '
    .. 'nodes, edges, parameter counts and state memory.')
  return Graph
end
