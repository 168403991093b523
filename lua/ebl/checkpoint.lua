-- Checkpoints: a model's parameters under their stable names, the
-- optimiser's buffers ("optim.<i>.<slot>", i the parameter's position)
-- and, as metadata, the format version, the model's configuration and
-- graph, the epoch, the random generator's state, the optimiser's step
-- count and hyper-parameters and the trainer's own state (all JSON).
-- One safetensors file, written atomically by ebl.save.
return function(ebl)
  local json = ebl.json
  local checkpoint = {}

  checkpoint.FORMAT = '1'

  local function fail(fmt, ...)
    error('checkpoint: ' .. fmt:format(...), 0)
  end

  local function shape_text(t)
    local s = t:shape()
    return #s == 0 and 'scalar' or table.concat(s, 'x')
  end

  -- Raises "bad argument #i to 'fn' (what expected, got <type>)" unless
  -- ok, at the caller of fn (level: how far up the stack that is).
  local function check_arg(ok, fn, i, what, v, level)
    if not ok then
      error(("bad argument #%d to '%s' (%s expected, got %s)"):format(i,
        fn, what, type(v)), level or 3)
    end
  end

  -- Checks the model, optimiser and state arguments of save and load.
  local function check_args(fn, m, opt, state)
    check_arg(getmetatable(m) == ebl.Model, fn, 2, 'model', m, 4)
    check_arg(opt == nil or (type(opt) == 'table'
      and type(opt.state) == 'function'), fn, 3, 'optimiser', opt, 4)
    check_arg(state == nil or type(state) == 'table', fn, 4, 'table',
      state, 4)
  end

  -- Nodes and edges as plain tables (what the graph is, for a reader).
  function checkpoint.describe(m)
    check_arg(getmetatable(m) == ebl.Model, 'describe', 1, 'model', m)
    local nodes, edges = {}, {}
    for i, nd in ipairs(m.graph.nodes) do
      nodes[i] = {name = nd.name, shape = nd.shape, role = nd.role,
        activation = nd.activation}
    end
    for i, e in ipairs(m.graph.edges) do
      edges[i] = {src = e.src.name, dst = e.dst.name, kind = e.kind,
        delay = e.delay, fn = tostring(e.fn)}
    end
    return {nodes = nodes, edges = edges}
  end

  -- The optimiser's state as tensors and a JSON-able description.
  local function optim_parts(opt, tensors)
    local s = opt:state()
    local inner = s.kind == 'lalr' and s.base or s
    for i, slots in pairs(inner.slots) do
      for name, t in pairs(slots) do
        tensors[('optim.%d.%s'):format(i, name)] = t
      end
    end
    local hyper = {}
    for k, v in pairs(opt.opts or {}) do
      if type(v) ~= 'table' and type(v) ~= 'function' then hyper[k] = v end
    end
    return {kind = s.kind, base = s.kind == 'lalr' and inner.kind or nil,
      t = inner.t, hyper = hyper}
  end

  -- save(path, m, opt, state): state is a table of the caller's
  -- (the trainer's epoch, history, ...), stored as JSON.
  function checkpoint.save(path, m, opt, state)
    if type(path) ~= 'string' then
      error("bad argument #1 to 'save' (path expected, got "
        .. type(path) .. ')', 2)
    end
    check_args('save', m, opt, state)
    local tensors = {}
    local params, names = m:params(), m:param_names()
    for i, name in ipairs(names) do tensors[name] = params[i] end
    local seed, offset = ebl._rng_state()
    state = state or {}
    local meta = {
      format = checkpoint.FORMAT,
      model = json.encode(m.config),
      graph = json.encode(checkpoint.describe(m)),
      params = json.encode(names),
      epoch = tostring(state.epoch or 0),
      rng_seed = seed, rng_offset = offset,
      trainer = json.encode(state),
    }
    if opt then meta.optim = json.encode(optim_parts(opt, tensors)) end
    ebl.save(path, tensors, meta)
  end

  -- Every way the file's parameters differ from the model's, as lines.
  local function differences(tensors, m)
    local lines, known = {}, {}
    local params, names = m:params(), m:param_names()
    local missing = {}
    for i, name in ipairs(names) do
      known[name] = true
      local t = tensors[name]
      if t == nil then
        missing[#missing + 1] = "'" .. name .. "'"
      elseif shape_text(t) ~= shape_text(params[i]) then
        lines[#lines + 1] = ("parameter '%s' has shape %s in the file, %s "
          .. 'in the model'):format(name, shape_text(t),
          shape_text(params[i]))
      elseif t:dtype() ~= params[i]:dtype() then
        lines[#lines + 1] = ("parameter '%s' is %s in the file, %s in the "
          .. 'model'):format(name, t:dtype(), params[i]:dtype())
      end
    end
    if #missing > 0 then
      lines[#lines + 1] = 'missing from the file: '
        .. table.concat(missing, ', ')
    end
    local extra = {}
    for name in pairs(tensors) do
      if not known[name] and not name:find('^optim%.') then
        extra[#extra + 1] = "'" .. name .. "'"
      end
    end
    table.sort(extra)
    if #extra > 0 then
      lines[#lines + 1] = 'in the file but not in the model: '
        .. table.concat(extra, ', ')
    end
    return lines
  end

  local function decode(meta, key, path)
    local ok, v = pcall(json.decode, meta[key] or 'null')
    if not ok then fail("%s: metadata '%s' is not JSON (%s)", path, key, v) end
    return v
  end

  -- Fails unless the file's optimiser is of opt's kind.
  local function check_optim(path, info, opt)
    local s = opt:state()
    if info.kind ~= s.kind or (s.kind == 'lalr' and info.base ~= s.base.kind)
    then
      fail("%s: the file's optimiser is %s, this run's is %s", path,
        tostring(info.kind), s.kind)
    end
  end

  -- Puts the file's optimiser buffers and step count into opt.
  local function load_optim(tensors, info, opt)
    local slots = {}
    for name, t in pairs(tensors) do
      local i, slot = name:match('^optim%.(%d+)%.(.+)$')
      if i then
        i = math.tointeger(tonumber(i))
        slots[i] = slots[i] or {}
        slots[i][slot] = t
      end
    end
    local inner = {kind = info.base or info.kind, t = info.t, slots = slots}
    if info.kind == 'lalr' then
      opt:load_state({kind = 'lalr', base = inner})
    else
      opt:load_state(inner)
    end
  end

  -- load(path, m [, opt]) -> state, metadata: copies the parameters into
  -- m after checking every name and shape, restores the optimiser and
  -- the random generator, and returns the caller's state.
  function checkpoint.load(path, m, opt)
    if type(path) ~= 'string' then
      error("bad argument #1 to 'load' (path expected, got "
        .. type(path) .. ')', 2)
    end
    check_args('load', m, opt)
    local tensors, meta = ebl.load(path)
    if meta.format ~= checkpoint.FORMAT then
      fail('%s: not an ebl checkpoint of format %s (format %s)', path,
        checkpoint.FORMAT, tostring(meta.format))
    end
    local lines = differences(tensors, m)
    if #lines > 0 then
      fail('%s does not fit the model:\n  %s', path,
        table.concat(lines, '\n  '))
    end
    local info = decode(meta, 'optim', path)
    if opt and info then check_optim(path, info, opt) end
    local params, names = m:params(), m:param_names()
    for i, name in ipairs(names) do params[i]:copy(tensors[name]) end
    if opt and info then load_optim(tensors, info, opt) end
    if meta.rng_seed and meta.rng_offset then
      ebl._rng_set_state(meta.rng_seed, meta.rng_offset)
    end
    local state = decode(meta, 'trainer', path) or {}
    state.epoch = math.tointeger(tonumber(meta.epoch)) or state.epoch
    return state, meta
  end

  ebl.doc(checkpoint.save, 'checkpoint.save(path, m [, opt [, state]]) '
    .. 'writes the parameters of model m (under m:param_names()), the '
    .. "optimiser's buffers and step count, the random generator's state "
    .. 'and the table state (JSON) to a safetensors file, atomically.')
  ebl.doc(checkpoint.load, 'checkpoint.load(path, m [, opt]) -> state, '
    .. 'metadata: checks that every parameter name and shape of m is in '
    .. 'the file (an error lists each difference), copies them in, '
    .. "restores opt's buffers and the random generator, and returns "
    .. 'the state table given to save.')
  ebl.doc(checkpoint.describe, 'checkpoint.describe(m) -> {nodes=, edges=}'
    .. ': the graph of m as plain tables (what checkpoints store).')
  return checkpoint
end
