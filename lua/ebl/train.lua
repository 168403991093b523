-- ebl.train(m, train, opts): epochs of inference and learning over a
-- dataset, in Lua on top of the engine (m:infer, m:learn): batches from
-- ebl.data.loader, an optimiser and its learning-rate schedule, a test
-- set evaluated every epoch, a progress bar on a terminal or one line
-- per epoch elsewhere, a per-epoch log, checkpoints every epoch and
-- resuming from one, bit for bit.
return function(ebl)
  ebl.json = require('ebl.json')(ebl)
  ebl.checkpoint = require('ebl.checkpoint')(ebl)
  local json, checkpoint = ebl.json, ebl.checkpoint

  local KNOWN = {'epochs', 'batch', 'optim', 'lr', 'momentum',
    'weight_decay', 'base', 'steps', 'state_lr', 'tol', 'beta',
    'state_optim', 'infer', 'test', 'schedule', 'seed', 'normalize',
    'augment', 'subset', 'test_subset', 'eval_batch', 'log', 'save',
    'resume', 'quiet', 'progress', 'max_batches', 'on_epoch', 'on_batch',
    'config'}

  local function fail(fmt, ...)
    error('train: ' .. fmt:format(...), 0)
  end

  local function check_options(opts)
    local set = {}
    for _, k in ipairs(KNOWN) do set[k] = true end
    for k in pairs(opts) do
      if not set[k] then
        fail("unknown option '%s' (known: %s)", tostring(k),
          table.concat(KNOWN, ', '))
      end
    end
  end

  local function positive_int(opts, name, default)
    local v = opts[name]
    if v == nil then return default end
    if math.type(v) ~= 'integer' or v < 1 then
      fail('%s must be an integer >= 1, got %s', name, tostring(v))
    end
    return v
  end

  ---------------------------------------------------------------------
  -- Optimiser and schedule

  local OPTIMISERS = {sgd = true, adam = true, adamw = true, lars = true,
    lalr = true}

  -- opts.optim: an optimiser object, or a name with lr, momentum,
  -- weight_decay and (lalr) base.
  local function make_optim(opts)
    local o = opts.optim or 'adam'
    if type(o) == 'table' then
      if type(o.step) ~= 'function' or type(o.opts) ~= 'table' then
        fail('optim must be an ebl.optim object or a name')
      end
      return o
    end
    if not OPTIMISERS[o] then
      fail("optim must be sgd, adam, adamw, lars or lalr, got '%s'",
        tostring(o))
    end
    local args = {lr = opts.lr or 1e-3, weight_decay = opts.weight_decay}
    if o == 'sgd' or o == 'lars' or (o == 'lalr' and (opts.base == 'sgd'
        or opts.base == 'lars')) then
      args.momentum = opts.momentum
    end
    if o == 'lalr' then args.base = opts.base or 'adam' end
    return ebl.optim[o](args)
  end

  -- The factor of the base learning rate at batch k of epoch e (1-based),
  -- with nb batches per epoch and epochs in the run.
  local function make_schedule(s, epochs, nb)
    if s == nil or s == false or s == 'none' then
      return function() return 1 end
    end
    if type(s) == 'string' then s = {kind = s} end
    if type(s) ~= 'table' then
      fail("schedule must be 'cosine', 'step' or a table, got %s", type(s))
    end
    if s.kind == 'step' then
      local every, gamma = s.every or 1, s.gamma or 0.1
      if math.type(every) ~= 'integer' or every < 1 then
        fail('schedule.every must be an integer >= 1, got %s',
          tostring(every))
      end
      return function(e) return gamma ^ ((e - 1) // every) end
    elseif s.kind == 'cosine' then
      local low = s.min or 0
      return function(e, k)
        local p = ((e - 1) * nb + (k - 1)) / (epochs * nb)
        return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * p))
      end
    end
    fail("schedule kind must be 'step' or 'cosine', got '%s'",
      tostring(s.kind))
  end

  ---------------------------------------------------------------------
  -- Batches into the model

  local function node_with_role(m, role)
    for _, nd in ipairs(m.graph.nodes) do
      if nd.role == role then return nd end
    end
    fail("the model has no node with role '%s'", role)
  end

  local function numel(shape)
    local n = 1
    for _, s in ipairs(shape) do n = n * s end
    return n
  end

  -- Checks that the dataset's samples fit the input node.
  local function check_input(m, ds)
    local input = node_with_role(m, 'input')
    if numel(input.shape) ~= numel(ds.shape) then
      fail("the dataset's samples are %s, the model's input '%s' takes %s",
        table.concat(ds.shape, 'x'), input.name,
        table.concat(input.shape, 'x'))
    end
    return input
  end

  local function as_input(ctx, x)
    return x:reshape{x:size(1), table.unpack(ctx.input.shape)}
  end

  -- The target of inference: labels, or one-hot rows for an MSE loss.
  local function target(ctx, y)
    if ctx.m.config.loss ~= 'mse' then return y end
    return y:reshape{y:numel(), 1}:eq(ctx.classes):float()
  end

  local function finite(t)
    local s = type(t) == 'number' and t or t:sum():item()
    return s == s and s ~= math.huge and s ~= -math.huge
  end

  -- What a numeric stop leaves behind, for its message.
  local function intact(ctx)
    if not ctx.saved_epoch then return '' end
    return ('; the checkpoint of epoch %d in %s is intact'):format(
      ctx.saved_epoch, ctx.save)
  end

  -- The first node whose states hold a NaN or an Inf, or nil.
  local function bad_node(m)
    for _, nd in ipairs(m.graph.nodes) do
      for t = 1, m.config.time_steps do
        local ok, v = pcall(m.state, m, nd.name, t)
        if ok and not finite(v) then return nd.name end
      end
    end
  end

  local function numeric_stop(ctx, epoch, k, what)
    local node = bad_node(ctx.m)
    fail('epoch %d, batch %d: %s became NaN or Inf%s%s', epoch, k, what,
      node and (" in node '%s'"):format(node) or '', intact(ctx))
  end

  -- One inference; an error of the engine about NaN or Inf is reported
  -- with the epoch, other errors (Ctrl-C) pass as they are.
  local function infer(ctx, x, y, epoch, k)
    local ok, energy = pcall(ctx.m.infer, ctx.m, x, target(ctx, y),
      ctx.infer)
    if not ok then
      local msg = tostring(energy)
      if msg:find('NaN or Inf') then
        fail('epoch %d, batch %d: %s%s', epoch, k,
          msg:gsub('^[^:]*:%d+: ', ''), intact(ctx))
      end
      error(energy, 0)
    end
    return energy
  end

  -- The output's prediction for the batch and its loss. pc and bipc
  -- move the output toward the label during inference, so their
  -- prediction is a forward sweep made before it; ep and bp leave the
  -- prediction in the output state.
  local function prediction(ctx, x)
    if ctx.sweep_first then return ctx.m:predict(x) end
    return nil
  end

  local function loss_of(ctx, logits, y)
    if ctx.m.config.loss == 'mse' then
      return ebl.mse_loss(logits, target(ctx, y))
    end
    return ebl.cross_entropy(logits, y)
  end

  local function correct(logits, y)
    return (logits:argmax(2) - 1):eq(y:int()):sum():item()
  end

  ---------------------------------------------------------------------
  -- Display

  local function clock_text(s)
    s = math.max(0, math.floor(s + 0.5))
    if s >= 3600 then
      return ('%d:%02d:%02d'):format(s // 3600, s // 60 % 60, s % 60)
    end
    return ('%d:%02d'):format(s // 60, s % 60)
  end

  -- Redraws the progress bar in place.
  local function draw_progress(ctx, epoch, k, st, elapsed)
    local nb = ctx.nb
    local width = 20
    local filled = math.floor(width * k / nb)
    local left_batches = (ctx.epochs - epoch) * nb + (nb - k)
    local left = elapsed / math.max(1, k) * left_batches
    local line = ('epoch %d/%d [%s%s] %d/%d loss %.3f energy %.4g acc %.3f'
      .. ' %.0f samples/s %s left'):format(epoch, ctx.epochs,
      ('#'):rep(filled), ('.'):rep(width - filled), k, nb,
      st.loss / st.samples, st.energy / st.batches, st.right / st.samples,
      st.samples / math.max(elapsed, 1e-9), clock_text(left))
    io.stdout:write('\r', line, '\27[K')
    io.stdout:flush()
  end

  local function epoch_line(r)
    local line = ('epoch %d: train loss %.3f acc %.3f'):format(r.epoch,
      r.train_loss, r.train_acc)
    if r.test_acc then
      line = line .. (', test acc %.3f'):format(r.test_acc)
    end
    return line .. (', %.0f samples/s (%.1f s)'):format(
      r.samples_per_second, r.seconds)
  end

  local LOG_FIELDS = {'epoch', 'lr', 'train_loss', 'train_energy',
    'train_acc', 'test_acc', 'samples', 'samples_per_second',
    'train_seconds', 'eval_seconds', 'seconds'}

  -- Opens the per-epoch log: JSON lines, or CSV for a .csv path.
  local function open_log(path, resumed)
    if path == nil then return nil end
    local csv = path:lower():find('%.csv$') ~= nil
    local existing = io.open(path, 'r')
    local empty = existing == nil or existing:seek('end') == 0
    if existing then existing:close() end
    local f, err = io.open(path, resumed and 'a' or 'w')
    if not f then fail('cannot write the log: %s', err) end
    if csv and (empty or not resumed) then
      f:write(table.concat(LOG_FIELDS, ','), '\n')
    end
    return {file = f, csv = csv}
  end

  local function write_log(log, r)
    if log == nil then return end
    if log.csv then
      local cells = {}
      for i, k in ipairs(LOG_FIELDS) do
        local v = r[k]
        cells[i] = v == nil and '' or (math.type(v) == 'integer'
          and tostring(v) or ('%.10g'):format(v))
      end
      log.file:write(table.concat(cells, ','), '\n')
    else
      log.file:write(json.encode(r), '\n')
    end
    log.file:flush()
  end

  ---------------------------------------------------------------------
  -- Epochs

  -- Trains one epoch; returns its totals.
  local function train_epoch(ctx, epoch)
    local m, opt = ctx.m, ctx.opt
    local st = {loss = 0, energy = 0, right = 0, samples = 0, batches = 0}
    local t0, drawn, k = ebl.clock(), 0, 0
    for x, y in ctx.loader:epoch(epoch) do
      k = k + 1
      if ctx.max_batches and k > ctx.max_batches then break end
      opt.opts.lr = ctx.base_lr * ctx.schedule(epoch, k)
      x = as_input(ctx, x)
      local logits = prediction(ctx, x)
      local energy = infer(ctx, x, y, epoch, k)
      logits = logits or m:state(ctx.output.name)
      local loss = loss_of(ctx, logits, y)
      if not finite(energy) then numeric_stop(ctx, epoch, k, 'the energy') end
      if not finite(loss) then numeric_stop(ctx, epoch, k, 'the loss') end
      local n = y:numel()
      st.right = st.right + correct(logits, y)
      m:learn(opt)
      st.loss, st.energy = st.loss + loss * n, st.energy + energy
      st.samples, st.batches = st.samples + n, st.batches + 1
      if ctx.on_batch then ctx.on_batch(epoch, k, loss, energy, m) end
      local now = ebl.clock()
      if ctx.progress and (now - drawn >= 0.1 or k == ctx.nb) then
        draw_progress(ctx, epoch, k, st, now - t0)
        drawn = now
      end
    end
    st.seconds = ebl.clock() - t0
    return st
  end

  -- Accuracy on the test set, averaged by sample count.
  local function evaluate(ctx)
    local right, n = 0, 0
    for x, y in ctx.test_loader:epoch(1) do
      local count = y:numel()
      local acc = ctx.m:evaluate(as_input(ctx, x), y)
      right = right + math.floor(acc * count + 0.5)
      n = n + count
    end
    return n > 0 and right / n or nil
  end

  -- Fails naming the first parameter holding a NaN or an Inf.
  local function check_params(ctx, epoch)
    local params, names = ctx.m:params(), ctx.m:param_names()
    for i, p in ipairs(params) do
      if not finite(p) then
        fail("epoch %d: parameter '%s' became NaN or Inf%s", epoch,
          names[i], intact(ctx))
      end
    end
  end

  local function run_epoch(ctx, epoch)
    local t0 = ebl.clock()
    local st = train_epoch(ctx, epoch)
    if ctx.progress then io.stdout:write('\r\27[K') end
    check_params(ctx, epoch)
    local e0 = ebl.clock()
    local test_acc = ctx.test_loader and evaluate(ctx)
    local r = {epoch = epoch, lr = ctx.opt.opts.lr,
      train_loss = st.loss / math.max(st.samples, 1),
      train_energy = st.energy / math.max(st.batches, 1),
      train_acc = st.right / math.max(st.samples, 1), test_acc = test_acc,
      samples = st.samples,
      samples_per_second = st.samples / math.max(st.seconds, 1e-9),
      train_seconds = st.seconds, eval_seconds = ebl.clock() - e0,
      seconds = ebl.clock() - t0}
    return r
  end

  local function save_checkpoint(ctx, epoch)
    checkpoint.save(ctx.save, ctx.m, ctx.opt, {epoch = epoch,
      epochs = ctx.epochs, seed = ctx.seed, base_lr = ctx.base_lr,
      history = ctx.history, config = ctx.config})
    ctx.saved_epoch = epoch
  end

  ---------------------------------------------------------------------
  -- Setting up

  local function make_loaders(ctx, train, opts)
    ctx.loader = ebl.data.loader(train, {batch = ctx.batch, seed = ctx.seed,
      normalize = opts.normalize == nil and true or opts.normalize,
      augment = opts.augment, subset = opts.subset})
    ctx.nb = ctx.loader:batches()
    if ctx.max_batches then ctx.nb = math.min(ctx.nb, ctx.max_batches) end
    if opts.test then
      check_input(ctx.m, opts.test)
      ctx.test_loader = ebl.data.loader(opts.test, {shuffle = false,
        batch = positive_int(opts, 'eval_batch', 1000),
        subset = opts.test_subset, normalize = ctx.loader.mean and
          {mean = ctx.loader.mean, std = ctx.loader.std} or nil})
    end
  end

  local function infer_options(opts)
    local o = {}
    for k, v in pairs(opts.infer or {}) do o[k] = v end
    for _, k in ipairs{'steps', 'state_lr', 'tol', 'beta', 'state_optim'} do
      if opts[k] ~= nil then o[k] = opts[k] end
    end
    return o
  end

  local function context(m, train, opts)
    local energy = m.config.energy
    local ctx = {m = m, config = opts.config, save = opts.save,
      epochs = positive_int(opts, 'epochs', 1),
      batch = positive_int(opts, 'batch', 128),
      max_batches = positive_int(opts, 'max_batches', nil),
      infer = infer_options(opts), opt = make_optim(opts),
      input = check_input(m, train), output = node_with_role(m, 'output'),
      sweep_first = energy ~= 'ep' and energy ~= 'bp', history = {},
      first_epoch = 1, quiet = opts.quiet, on_batch = opts.on_batch}
    ctx.base_lr = ctx.opt.opts.lr
    ctx.classes = ebl.arange(0, numel(ctx.output.shape), 1,
      {dtype = 'int32'}):reshape{1, numel(ctx.output.shape)}
    ctx.progress = opts.progress
    if ctx.progress == nil then
      ctx.progress = not opts.quiet and ebl.isatty(1)
    end
    return ctx
  end

  -- Restores the model, optimiser and history from opts.resume.
  local function resume(ctx, path, seed)
    local state = checkpoint.load(path, ctx.m, ctx.opt)
    ctx.history = state.history or {}
    ctx.first_epoch = (state.epoch or 0) + 1
    ctx.seed = seed or state.seed
    ctx.saved_epoch = ctx.save == path and state.epoch or nil
  end

  local function summary(ctx, wall)
    local last = ctx.history[#ctx.history] or {}
    local samples, seconds = 0, 0
    for _, r in ipairs(ctx.run) do
      samples, seconds = samples + r.samples, seconds + r.train_seconds
    end
    return {test_acc = last.test_acc, train_acc = last.train_acc,
      train_loss = last.train_loss, epochs = last.epoch or 0,
      train_seconds = seconds, wall_seconds = wall,
      samples_per_second = seconds > 0 and samples / seconds or 0,
      history = ctx.history}
  end

  function ebl.train(m, train, opts)
    if getmetatable(m) ~= ebl.Model then
      error("bad argument #1 to 'train' (model expected, got "
        .. type(m) .. ')', 2)
    end
    opts = opts or {}
    if type(train) == 'table' and train.train and not train.images then
      if opts.test == nil then opts.test = train.test end
      train = train.train
    end
    if type(train) ~= 'table' or not ebl.is_tensor(train.images) then
      error("bad argument #2 to 'train' (dataset expected, got "
        .. type(train) .. ')', 2)
    end
    check_options(opts)
    local wall0 = ebl.clock()
    local ctx = context(m, train, opts)
    ctx.seed = opts.seed
    if opts.resume then resume(ctx, opts.resume, opts.seed) end
    ctx.seed = ctx.seed or ebl.data._rng_seed()
    make_loaders(ctx, train, opts)
    ctx.schedule = make_schedule(opts.schedule, ctx.epochs, ctx.nb)
    local log = open_log(opts.log, opts.resume ~= nil)
    ctx.run = {}
    for epoch = ctx.first_epoch, ctx.epochs do
      local r = run_epoch(ctx, epoch)
      ctx.history[#ctx.history + 1] = r
      ctx.run[#ctx.run + 1] = r
      if not ctx.quiet then print(epoch_line(r)) end
      write_log(log, r)
      if ctx.save then save_checkpoint(ctx, epoch) end
      if opts.on_epoch then opts.on_epoch(r, m) end
    end
    if log then log.file:close() end
    ctx.loader:close()
    if ctx.test_loader then ctx.test_loader:close() end
    return summary(ctx, ebl.clock() - wall0)
  end

  ebl.doc(ebl.train, 'train(m, train, opts) -> summary: trains model m on '
    .. 'dataset train (or {train=, test=}). opts: epochs=1, batch=128, '
    .. "optim='adam' (or sgd, adamw, lars, lalr, or an ebl.optim object) "
    .. 'with lr=1e-3, momentum=, weight_decay=, base=; inference: steps=, '
    .. 'state_lr=, tol=, beta=, state_optim= (m:infer\'s defaults when '
    .. "absent); test= a dataset evaluated every epoch; schedule='cosine'"
    .. " (per batch) or {kind='step', gamma=0.1, every=k}; seed= (batch "
    .. 'order: a function of seed and epoch); normalize=true, augment=, '
    .. 'subset=, test_subset=, eval_batch=1000, max_batches=; log=path '
    .. '(JSON lines, CSV for .csv); save=path (a checkpoint every epoch); '
    .. 'resume=path (continue bit for bit); quiet=, progress=; on_epoch='
    .. 'function(record, m), on_batch=function(epoch, k, loss, energy, m). '
    .. 'The summary has test_acc, train_seconds, '
    .. 'samples_per_second, epochs and history (one record per epoch).')
  return ebl.train
end
