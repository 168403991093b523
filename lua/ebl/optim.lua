-- Parameter optimisers: sgd (momentum, nesterov, weight decay), adam,
-- adamw, lars, and lalr over any of them (eqs. 13-16). Each has
-- opt:step(params, grads [, groups]) updating the parameter tensors in
-- place, and opt:state() / opt:load_state(s) for checkpoints. groups[i]
-- names the layer of parameter i (weight and bias share one).
return function(ebl)
  local optim = {}

  local function check_opts(fn, opts, known)
    if opts ~= nil and type(opts) ~= 'table' then
      error(("bad argument #1 to '%s' (table expected, got %s)")
        :format(fn, type(opts)), 3)
    end
    opts = opts or {}
    for k in pairs(opts) do
      if not known[k] then
        error(("%s: unknown option '%s'"):format(fn, tostring(k)), 3)
      end
    end
    local lr = opts.lr
    if type(lr) ~= 'number' or not (lr > 0) then
      error(("%s: lr must be a number > 0, got %s"):format(fn, tostring(lr)),
        3)
    end
    return opts
  end

  local Optimizer = {}
  Optimizer.__index = Optimizer

  -- A tensor's shape as "2x3" for messages.
  local function shape_string(t)
    local shape = t:shape()
    return #shape == 0 and 'scalar' or table.concat(shape, 'x')
  end

  local function new(kind, opts, slots)
    return setmetatable({kind = kind, opts = opts, t = 0, slots = {},
      slot_names = slots}, Optimizer)
  end

  -- The per-parameter buffers of parameter i, made on first use; buffers
  -- loaded from a checkpoint move to the parameter's device.
  function Optimizer:buffers(i, p)
    local b = self.slots[i]
    if b == nil then
      b = {}
      for _, name in ipairs(self.slot_names) do b[name] = p:clone():fill(0) end
      self.slots[i] = b
    end
    local device, shape = p:device(), shape_string(p)
    for name, t in pairs(b) do
      if shape_string(t) ~= shape then
        error(('%s: buffer %s of parameter %d has shape %s, the parameter '
          .. '%s'):format(self.kind, name, i, shape_string(t), shape), 0)
      end
      if t:device() ~= device then b[name] = t:to(device) end
    end
    return b
  end

  -- Fails unless gradient i is a tensor of parameter i's shape and dtype.
  local function check_grad(kind, i, p, g)
    if not ebl.is_tensor(g) then
      error(('%s: gradient %d must be a tensor, got %s'):format(kind, i,
        type(g)), 4)
    end
    if g:dtype() ~= p:dtype() or shape_string(g) ~= shape_string(p) then
      error(('%s: gradient %d is %s %s, parameter %d is %s %s'):format(kind,
        i, shape_string(g), g:dtype(), i, shape_string(p), p:dtype()), 4)
    end
  end

  -- Fails unless grads pairs with params one to one.
  local function check_step(kind, params, grads)
    if #params ~= #grads then
      error(('%s: %d parameters but %d gradients'):format(kind, #params,
        #grads), 3)
    end
    for i = 1, #params do check_grad(kind, i, params[i], grads[i]) end
  end

  function Optimizer:step(params, grads, groups)
    check_step(self.kind, params, grads)
    self.t = self.t + 1
    for i = 1, #params do
      self:update(i, params[i], grads[i], self.opts.lr)
    end
  end

  -- A copy of the optimiser's state (step count and buffers).
  function Optimizer:state()
    local slots = {}
    for i, b in pairs(self.slots) do
      slots[i] = {}
      for k, t in pairs(b) do slots[i][k] = t:clone() end
    end
    return {kind = self.kind, t = self.t, slots = slots}
  end

  function Optimizer:load_state(s)
    if type(s) ~= 'table' or s.kind ~= self.kind then
      error(('load_state: a state of %s expected, got %s'):format(self.kind,
        type(s) == 'table' and tostring(s.kind) or type(s)), 2)
    end
    self:check_state(s)
    self.t = math.tointeger(s.t)
    self.slots = {}
    for i, b in pairs(s.slots) do
      self.slots[i] = {}
      for k, t in pairs(b) do self.slots[i][k] = t:clone() end
    end
  end

  -- Fails naming the field when s is not a state this optimiser wrote:
  -- a step count, and per parameter index its buffers by name.
  function Optimizer:check_state(s)
    local function bad(what, got)
      error(('load_state: %s, got %s'):format(what, got), 4)
    end
    local t = math.tointeger(s.t)
    if t == nil or t < 0 then
      bad('t must be an integer >= 0', tostring(s.t))
    end
    if type(s.slots) ~= 'table' then
      bad('slots must be a table', type(s.slots))
    end
    local known = {}
    for _, name in ipairs(self.slot_names) do known[name] = true end
    for i, b in pairs(s.slots) do
      if math.type(i) ~= 'integer' or i < 1 or type(b) ~= 'table' then
        bad('slots must map parameter indices to tables',
          ('%s = %s'):format(tostring(i), type(b)))
      end
      for k, t in pairs(b) do
        if not known[k] or not ebl.is_tensor(t) then
          bad(('slots[%d] holds tensors named %s'):format(i,
            table.concat(self.slot_names, ', ')), ('%s = %s'):format(
            tostring(k), ebl.is_tensor(t) and 'tensor' or type(t)))
        end
      end
    end
  end

  -- g + wd * p, a new tensor (the gradients stay as they were).
  local function decayed(g, p, wd)
    if wd == 0 then return g end
    return g:clone():add_(p, wd)
  end

  -- sgd{lr=, momentum=0, nesterov=false, weight_decay=0}
  function optim.sgd(opts)
    opts = check_opts('sgd', opts, {lr = true, momentum = true,
      nesterov = true, weight_decay = true})
    local mu, wd = opts.momentum or 0, opts.weight_decay or 0
    local o = new('sgd', opts, mu > 0 and {'momentum'} or {})
    function o:update(i, p, g, lr)
      local d = decayed(g, p, wd)
      if mu > 0 then
        local buf = self:buffers(i, p).momentum
        buf:mul_(mu):add_(d)
        d = opts.nesterov and d:clone():add_(buf, mu) or buf
      end
      p:add_(d, -lr)
    end
    return o
  end

  -- Adam's update; decoupled weight decay makes it AdamW.
  local function adam(kind, opts, decoupled)
    opts = check_opts(kind, opts, {lr = true, beta1 = true, beta2 = true,
      eps = true, weight_decay = true})
    local b1, b2 = opts.beta1 or 0.9, opts.beta2 or 0.999
    local eps = opts.eps or 1e-8
    local wd = opts.weight_decay or (decoupled and 0.01 or 0)
    local o = new(kind, opts, {'m', 'v'})
    function o:update(i, p, g, lr)
      local b = self:buffers(i, p)
      if decoupled then p:mul_(1 - lr * wd) else g = decayed(g, p, wd) end
      b.m:mul_(b1):add_(g, 1 - b1)
      b.v:mul_(b2):add_(g * g, 1 - b2)
      local c1, c2 = 1 - b1 ^ self.t, 1 - b2 ^ self.t
      local denom = (b.v / c2):sqrt_():add_(eps)
      p:add_(b.m / denom, -lr / c1)
    end
    return o
  end

  function optim.adam(opts) return adam('adam', opts, false) end
  function optim.adamw(opts) return adam('adamw', opts, true) end

  -- lars{lr=, momentum=0.9, weight_decay=0, trust=0.001}: each tensor's
  -- step scaled by trust * ||p|| / (||g|| + wd ||p||).
  function optim.lars(opts)
    opts = check_opts('lars', opts, {lr = true, momentum = true,
      weight_decay = true, trust = true})
    local mu, wd = opts.momentum or 0.9, opts.weight_decay or 0
    local trust = opts.trust or 0.001
    local o = new('lars', opts, {'momentum'})
    function o:update(i, p, g, lr)
      local pn, gn = p:norm():item(), g:norm():item()
      local ratio = 1
      if pn > 0 and gn > 0 then ratio = trust * pn / (gn + wd * pn) end
      local buf = self:buffers(i, p).momentum
      buf:mul_(mu):add_(decayed(g, p, wd), lr * ratio)
      p:sub_(buf)
    end
    return o
  end

  local BASES = {sgd = optim.sgd, adam = optim.adam, adamw = optim.adamw,
                 lars = optim.lars}

  -- lalr{lr=, base='adam', ...base options}: the layer-adaptive rate of
  -- eqs. 13-16. Layer i (weight and bias together) steps with
  -- lr_i = lr * H / ||g_i||, H the harmonic mean of the layers' gradient
  -- norms (zero norms skipped); lr_i scales the base optimiser's step.
  function optim.lalr(opts)
    if type(opts) ~= 'table' then
      error("bad argument #1 to 'lalr' (table expected, got "
        .. type(opts) .. ")", 2)
    end
    local base_name = opts.base or 'adam'
    local make = BASES[base_name]
    if make == nil then
      error(("lalr: base must be sgd, adam, adamw or lars, got '%s'")
        :format(tostring(base_name)), 2)
    end
    local base_opts = {}
    for k, v in pairs(opts) do
      if k ~= 'base' then base_opts[k] = v end
    end
    local base = make(base_opts)
    local o = setmetatable({kind = 'lalr', base = base, opts = opts},
      {__index = Optimizer})
    o.rates = {}
    function o:step(params, grads, groups)
      check_step('lalr', params, grads)
      groups = groups or {}
      local sq, order = {}, {}
      for i, g in ipairs(grads) do
        local key = groups[i] or i
        if sq[key] == nil then
          sq[key] = 0
          order[#order + 1] = key
        end
        sq[key] = sq[key] + g:norm():item() ^ 2
      end
      local inv, n = 0, 0
      for _, key in ipairs(order) do
        if sq[key] > 0 then
          inv = inv + 1 / math.sqrt(sq[key])
          n = n + 1
        end
      end
      local harmonic = n > 0 and n / inv or 0
      base.t = base.t + 1
      for i = 1, #params do
        local norm = math.sqrt(sq[groups[i] or i])
        local lr = norm > 0 and opts.lr * harmonic / norm or 0
        self.rates[i] = lr
        if lr > 0 then base:update(i, params[i], grads[i], lr) end
      end
    end
    function o:state() return {kind = 'lalr', base = base:state()} end
    -- A tail call: the base's errors, raised for its caller, then name
    -- the line that called this one.
    function o:load_state(s) return base:load_state(s.base) end
    return o
  end

  local docs = {
    sgd = 'sgd{lr=, momentum=0, nesterov=false, weight_decay=0}',
    adam = 'adam{lr=, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0}',
    adamw = 'adamw{lr=, beta1=0.9, beta2=0.999, eps=1e-8, '
      .. 'weight_decay=0.01} (decoupled decay)',
    lars = 'lars{lr=, momentum=0.9, weight_decay=0, trust=0.001}',
    lalr = "lalr{lr=, base='adam', ...}: layer i steps with "
      .. 'lr * H / ||g_i|| (H: harmonic mean of layer gradient norms).',
  }
  for name, text in pairs(docs) do ebl.doc(optim[name], text) end
  return optim
end
