-- ebl.model(g, opts): a graph compiled into the energy engine, with the
-- user's vocabulary for inference, states, errors and learning. The
-- numerics run in C (src/engine); this file only translates.
return function(ebl)
  local Model = {}
  Model.__index = Model
  Model.__name = 'ebl.Model'

  local ENERGIES = {pc = true, bipc = true, bipc_sq = true, ep = true,
                    bp = true}
  local KNOWN = {energy = true, loss = true, beta = true, time_steps = true,
    clamp = true, feedback_weight = true, feedback_from_output = true,
    cb_weight = true, literal = true, feedback_learns = true}

  -- The configuration with its defaults. BiPC's defaults are the reading
  -- that trained best (docs/ENERGIES.md): feedback weight 0.01 for eq. 10
  -- and 0.1 for eq. 9, no feedback from the output, no C_b; literal =
  -- true gives the equations as written: weight 1, feedback from the
  -- output, C_b on.
  local function config(opts)
    for k in pairs(opts) do
      if not KNOWN[k] then
        error(("model: unknown option '%s'"):format(tostring(k)), 3)
      end
    end
    local energy = opts.energy or 'pc'
    if not ENERGIES[energy] then
      error(("model: energy must be pc, bipc, bipc_sq, ep or bp, got '%s'")
        :format(tostring(energy)), 3)
    end
    local literal = opts.literal == true
    local function pick(v, default, lit)
      if v ~= nil then return v end
      if literal then return lit end
      return default
    end
    return {
      energy = energy, loss = opts.loss or 'ce',
      -- EP's estimate is biased by O(beta): a weaker nudge by default.
      beta = opts.beta or (energy == 'ep' and 0.2 or 1),
      time_steps = opts.time_steps or 1, clamp = opts.clamp or false,
      feedback_weight = pick(opts.feedback_weight,
        energy == 'bipc' and 0.01 or 0.1, 1),
      feedback_from_output = pick(opts.feedback_from_output, false, true),
      cb_weight = pick(opts.cb_weight, 0, 1),
      feedback_learns = pick(opts.feedback_learns, true, true),
    }
  end

  -- Parameters in edge order, then layer order, weight before bias; a
  -- tensor used twice (tied) appears once. Names follow the graph.
  local function collect(g)
    local params, names, index, groups = {}, {}, {}, {}
    local edges = {}
    for _, e in ipairs(g.edges) do
      local prefix = e.src.name .. '->' .. e.dst.name
      local ops = ebl.Graph.lower(e.fn, function(t)
        if index[t] == nil then
          params[#params + 1] = t
          index[t] = #params
        end
        return index[t]
      end)
      for li, l in ipairs(e.fn:flat()) do
        for _, field in ipairs{'weight', 'bias'} do
          local t = l[field]
          if t and names[index[t]] == nil then
            names[index[t]] = ('%s.%d.%s'):format(prefix, li, field)
            groups[index[t]] = prefix .. '.' .. li
          end
        end
      end
      edges[#edges + 1] = {src = e.src.index, dst = e.dst.index,
        delay = e.delay, kind = e.kind, ops = ops}
    end
    return params, names, groups, edges
  end

  function ebl.model(g, opts)
    if getmetatable(g) ~= ebl.Graph then
      error("bad argument #1 to 'model' (graph expected, got "
        .. type(g) .. ")", 2)
    end
    local cfg = config(opts or {})
    local params, names, groups, edges = collect(g)
    local nodes = {}
    for i, nd in ipairs(g.nodes) do
      nodes[i] = {name = nd.name, shape = nd.shape, role = nd.role,
        activation = nd.activation, slope = nd.slope}
    end
    local ok, core = pcall(ebl._model_new, {config = cfg, nodes = nodes,
      params = params, edges = edges})
    if not ok then error(core, 2) end
    return setmetatable({core = core, graph = g, config = cfg,
      param_list = params, names = names, groups = groups}, Model)
  end

  local function node_index(self, name, fn)
    local node = self.graph.by_name[name]
    if node == nil then
      error(("%s: no node named '%s'"):format(fn, tostring(name)), 3)
    end
    return node.index
  end

  local function time_index(self, t, fn)
    local T = self.config.time_steps
    t = t or T
    if math.type(t) ~= 'integer' or t < 1 or t > T then
      error(("%s: time step must be 1..%d, got %s"):format(fn, T,
        tostring(t)), 3)
    end
    return t
  end

  -- Reads a live per-node tensor of the last inference. The methods
  -- reach this by a tail call, so level 2 here (3 in node_index and
  -- time_index) is the user's line.
  local function slot(self, what, fn, name, t)
    local v = self.core:slot(what, node_index(self, name, fn),
      time_index(self, t, fn))
    if v == nil then error(fn .. ': run m:infer first', 2) end
    return v
  end

  -- The error of a core method called through pcall, as method `name`
  -- of the model would give it: an argument error gets the method's name
  -- and numbering back (pcall hid both). Other errors pass as they are.
  local function renamed(name, msg)
    if type(msg) ~= 'string' then return msg end
    return (msg:gsub("^bad argument #(%d+) to '%?'", function(n)
      return ("bad argument #%d to '%s'"):format(tonumber(n) - 1, name)
    end))
  end

  -- pcall's results passed on, or its error (renamed) raised again at
  -- level 2. Methods end in `return relay(name, pcall(core method, core,
  -- ...))`, a tail call that takes the method's frame, so level 2 is the
  -- user's line that called the method, not a line of this file.
  local function relay(name, ok, ...)
    if ok then return ... end
    error(renamed(name, (...)), 2)
  end

  function Model:infer(x, target, opts)
    self.infer_opts = opts
    return relay('infer', pcall(self.core.infer, self.core, x, target,
      opts))
  end

  function Model:step(opts)
    return relay('step', pcall(self.core.step, self.core, opts))
  end

  function Model:energy()
    return relay('energy', pcall(self.core.energy, self.core))
  end

  function Model:state(name, t) return slot(self, 'state', 'state', name, t) end

  function Model:error(name, t, which)
    if which ~= nil and which ~= 'feedback' and which ~= 'forward' then
      error("error: third argument must be 'feedback' or 'forward'", 2)
    end
    return slot(self, which == 'feedback' and 'feedback' or 'error', 'error',
      name, t)
  end

  function Model:state_grad(name, t)
    return slot(self, 'grad', 'state_grad', name, t)
  end

  function Model:params()
    return {table.unpack(self.param_list)}
  end

  function Model:param_names()
    return {table.unpack(self.names)}
  end

  -- The parameters' gradients; an error is raised at `level` counted
  -- from here (3: the caller of the method that called this).
  local function param_grads(self, level)
    local ok, err = pcall(self.core.grads, self.core)
    if not ok then error(err, level) end
    local out = {}
    for i = 1, #self.param_list do out[i] = self.core:param_grad(i) end
    return out
  end

  function Model:grads()
    local grads = param_grads(self, 3)
    return grads
  end

  -- One learning step: gradients at the current states, then opt.
  function Model:learn(opt)
    if type(opt) ~= 'table' or type(opt.step) ~= 'function' then
      error("bad argument #1 to 'learn' (optimiser expected, got "
        .. type(opt) .. ")", 2)
    end
    opt:step(self.param_list, param_grads(self, 3), self.groups)
  end

  -- The output for x (a copy), at t = T: a forward sweep, or for EP the
  -- free fixed point (inference with beta = 0 and the last settings).
  -- An error is raised as method `name` gives it, at `level` counted
  -- from here.
  local function output_for(self, x, name, level)
    local ok, err
    if self.config.energy == 'ep' then
      local opts = {}
      for k, v in pairs(self.infer_opts or {}) do opts[k] = v end
      opts.beta, opts.record = 0, nil
      ok, err = pcall(self.core.infer, self.core, x, nil, opts)
    else
      ok, err = pcall(self.core.forward, self.core, x)
    end
    if not ok then error(renamed(name, err), level) end
    for _, nd in ipairs(self.graph.nodes) do
      if nd.role == 'output' then
        return self.core:slot('state', nd.index, self.config.time_steps)
          :clone()
      end
    end
  end

  function Model:predict(x)
    local out = output_for(self, x, 'predict', 3)
    return out
  end

  -- Accuracy of predict(x) against integer labels (0-based classes).
  function Model:evaluate(x, labels)
    local logits = output_for(self, x, 'evaluate', 3)
    -- argmax gives 1-based positions; labels are 0-based classes.
    local guess = logits:argmax(2) - 1
    local right = guess:eq(labels:int()):sum():item()
    return right / labels:numel()
  end

  -- Fig. 2a's diagnostic: per layer (weight and bias together),
  -- ||w|| / (lr ||dw||) at the current gradients. Returns the ratios and
  -- the layer names, in parameter order.
  function Model:weight_ratios(lr)
    if type(lr) ~= 'number' or not (lr > 0) then
      error("bad argument #1 to 'weight_ratios' (lr > 0 expected, got "
        .. tostring(lr) .. ")", 2)
    end
    local grads = self:grads()
    local w2, g2, order = {}, {}, {}
    for i, p in ipairs(self.param_list) do
      local key = self.groups[i]
      if w2[key] == nil then
        w2[key], g2[key] = 0, 0
        order[#order + 1] = key
      end
      w2[key] = w2[key] + p:norm():item() ^ 2
      g2[key] = g2[key] + grads[i]:norm():item() ^ 2
    end
    local ratios = {}
    for i, key in ipairs(order) do
      ratios[i] = math.sqrt(w2[key]) / (lr * math.sqrt(g2[key]))
    end
    return ratios, order
  end

  -- Per-node energy and |dF/dv| of each step of the last inference run
  -- with record = true: {energy = {{...}, ...}, grad = {...}}.
  function Model:trace() return self.core:trace() end

  function Model:summary(opts)
    opts = opts or {}
    opts.time_steps = self.config.time_steps
    return self.graph:summary(opts)
  end

  function Model:__tostring()
    return ('model(%s, %d nodes, %d edges, %d parameter tensors)'):format(
      self.config.energy, #self.graph.nodes, #self.graph.edges,
      #self.param_list)
  end

  ebl.Model = Model
  ebl.doc(ebl.model, "model(g, {energy='pc'|'bipc'|'bipc_sq'|'ep'|'bp', "
    .. "loss='ce'|'mse', beta=1 (ep: 0.2), time_steps=1, clamp=false, "
    .. "feedback_weight=0.01 (bipc) or 0.1 (bipc_sq), "
    .. "feedback_from_output=false, cb_weight=0, feedback_learns=true, "
    .. "literal=false}) -> a model of graph g. literal=true takes BiPC's "
    .. "eq. 10 (or 9) as written.")
  ebl.doc(Model.infer, 'm:infer(x, target, {steps=200, state_lr=0.01, '
    .. "tol=1e-7, beta=, state_optim='sgd'|'momentum'|'adam', record=, "
    .. 'param_lr=, check_every=10, backtrack=false}) -> energy, steps, '
    .. 'trace, state_lr. States start from a forward sweep. param_lr > 0 '
    .. 'runs incremental PC: an SGD step on the parameters at every '
    .. 'iteration. backtrack=true (SGD): a step that raises F is taken '
    .. 'back and state_lr halved, so F never rises; the state_lr returned '
    .. 'is the one reached. On a GPU the loop\'s tolerance and NaN check '
    .. 'runs there and is read every check_every steps.')
  ebl.doc(Model.step, 'm:step() -> energy after one more iteration.')
  ebl.doc(Model.energy, 'm:energy() -> F (batch mean) at the current states.')
  ebl.doc(Model.state, 'm:state(name [, t]) -> the live state tensor.')
  ebl.doc(Model.error, "m:error(name [, t [, 'feedback']]) -> live error.")
  ebl.doc(Model.state_grad, 'm:state_grad(name [, t]) -> dF/dv per sample.')
  ebl.doc(Model.params, 'm:params() -> parameter tensors (live).')
  ebl.doc(Model.grads, 'm:grads() -> dF/dtheta of the batch mean (live).')
  ebl.doc(Model.learn, 'm:learn(opt) applies one optimiser step.')
  ebl.doc(Model.predict, 'm:predict(x) -> output of a forward sweep.')
  ebl.doc(Model.evaluate, 'm:evaluate(x, labels) -> accuracy in [0, 1].')
  ebl.doc(Model.weight_ratios, 'm:weight_ratios(lr) -> per layer '
    .. '||w|| / (lr ||dw||) (Fig. 2a), and the layer names.')
  ebl.doc(Model.trace, 'm:trace() -> {energy=, grad=}: per step of the '
    .. 'last infer with record=true, per node: energy and |dF/dv|.')
  return Model
end
