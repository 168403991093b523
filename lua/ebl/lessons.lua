-- Lessons at the prompt, for workshops and self-study: ebl.lessons()
-- lists them, ebl.lesson(n) starts one, and ebl.lesson.next(), .back(),
-- .again() and .run() walk through its steps. A step is a short text and
-- a few lines of code; run() types them at a pretend prompt and shows
-- their values as the prompt would, in the global environment, so the
-- learner can carry on from there. Every step's code is run by
-- tests/spec/lessons_spec.lua.
return function(ebl)
  local LESSONS = {
    {title = 'Tensors at the prompt', steps = {
      {text = [[
A tensor is a grid of numbers with a shape, a dtype (float32 unless
you ask for another) and a device. Make one from nested tables; an
expression shows its value.]],
       code = {'x = ebl.tensor{{1, 2, 3}, {4, 5, 6}}', 'x',
               'x:shape(), x:dtype(), x:device()'}},
      {text = [[
Arithmetic is elementwise and broadcasts; reductions take a dimension,
counted from 1 as Lua counts.]],
       code = {'x * 2 + 1', 'x:sum()', 'x:sum(2)',
               'ebl.matmul(x, x:transpose(1, 2))'}},
      {text = [[
Random numbers come from a counter-based generator: a seed fixes them,
on the CPU and on a GPU alike.]],
       code = {'ebl.manual_seed(7)', 'a = ebl.randn{2, 3}',
               'ebl.manual_seed(7)', 'b = ebl.randn{2, 3}',
               'a:eq(b):sum():item() == a:numel()'}},
    }},
    {title = 'Predictive coding: energy and inference', steps = {
      {text = [[
A predictive coding network is a graph. Nodes hold states v; an edge
predicts the state of the node it points to from the state of the node
it leaves. ebl.models.mlp builds the chain x -> h1 -> y, each edge a
linear layer followed by tanh (but the one into y).]],
       code = {'g = ebl.models.mlp{sizes = {4, 16, 3}}',
               'm = ebl.model(g, {energy = "pc"})', 'm'}},
      {text = [[
Each node's error is its state less its prediction, e = v - f(v_below),
and the energy F is half the sum of the squared errors, plus beta times
the output's cost against the label. Inference clamps x, starts every
state at its prediction (F is then only the cost) and moves the hidden
and output states down dF/dv. The trace holds F after every step.]],
       code = {'ebl.manual_seed(1)', 'x = ebl.randn{8, 4}',
               'y = ebl.randint(0, 3, {8}, {dtype = "int32"})',
               'F, steps, trace = m:infer(x, y, {steps = 40, '
                 .. 'state_lr = 0.1})',
               'ebl.plot(trace, {height = 6, width = 40})'}},
      {text = [[
States, errors and dF/dv are live tensors. After inference the output's
mismatch has spread backwards: the hidden layer carries an error too.]],
       code = {'m:state("h1"):shape()', 'm:error("h1"):norm()',
               'm:error("y"):norm()', 'm:energy()'}},
      {text = [[
m:step() takes one more step of inference by hand: dF/dv, then the
states move against it, and F falls.]],
       code = {'before = m:energy()', 'after = m:step()',
               'after < before'}},
    }},
    {title = 'Learning with local updates', steps = {
      {text = [[
Once the states have settled, a weight's gradient needs only what its
two ends hold: for a linear edge, dF/dW = -(e_dst * f') v_src^T. No
error travels back through the network: inference already spread it.
(This lesson starts from a fresh network and batch.)]],
       code = {'ebl.manual_seed(1)',
               'm = ebl.model(ebl.models.mlp{sizes = {4, 16, 3}}, '
                 .. '{energy = "pc"})',
               'x = ebl.randn{8, 4}',
               'y = ebl.randint(0, 3, {8}, {dtype = "int32"})',
               'm:infer(x, y, {steps = 40, state_lr = 0.1});',
               'm:param_names()', 'm:grads()[1]:shape()'}},
      {text = [[
An optimiser applies the gradients: m:learn(opt). Training is inference
then learning, batch after batch. Here one batch is learned 30 times;
F before inference (the cost of the forward sweep) falls as the weights
fit it.]],
       code = {'opt = ebl.optim.adam{lr = 0.01}', 'start = {}',
               'for i = 1, 30 do local _, _, tr = m:infer(x, y, '
                 .. '{steps = 20, state_lr = 0.1}) start[i] = tr[1] '
                 .. 'm:learn(opt) end',
               'ebl.plot(start, {height = 6, width = 30})'}},
      {text = [[
m:predict(x) is a forward sweep, with no inference; m:evaluate(x, y)
gives the accuracy. Note that argmax counts classes from 1, labels
from 0.]],
       code = {'m:predict(x):argmax(2)', 'y', 'm:evaluate(x, y)'}},
    }},
    {title = 'Predictive coding approaches backprop', steps = {
      {text = [[
Nudge the output only weakly toward the label (a small beta) and the
settled errors become beta times backprop's: PC's weight gradients,
divided by beta, approach backprop's. Make the same network twice,
once with the energy 'bp' (backprop through the same layers).]],
       code = {'ebl.manual_seed(1)', 'x = ebl.randn{8, 4}',
               'y = ebl.randint(0, 3, {8}, {dtype = "int32"})',
               'ebl.manual_seed(3)',
               'pc = ebl.model(ebl.models.mlp{sizes = {4, 16, 3}}, '
                 .. '{energy = "pc"})',
               'ebl.manual_seed(3)',
               'bp = ebl.model(ebl.models.mlp{sizes = {4, 16, 3}}, '
                 .. '{energy = "bp"})'}},
      {text = [[
Settle PC with beta = 0.01 for long enough, take one backprop pass,
and compare the first layer's gradients: their cosine is near 1 and
their norms agree once PC's is divided by beta.]],
       code = {'pc:infer(x, y, {beta = 0.01, steps = 500, '
                 .. 'state_lr = 0.2, tol = 0});',
               'bp:infer(x, y);',
               'gp, gb = pc:grads()[1] / 0.01, bp:grads()[1]',
               '(gp * gb):sum():item() / (gp:norm() * gb:norm()):item()',
               '(gp:norm() / gb:norm()):item()'}},
    }},
    {title = 'BiPC and equilibrium propagation', steps = {
      {text = [[
BiPC adds feedback: each edge's transpose, with the same weights,
predicts the source from the target, and the feedback error e_b joins
the forward error in the energy. A hidden node now has both.]],
       code = {'ebl.manual_seed(1)', 'x = ebl.randn{8, 4}',
               'y = ebl.randint(0, 3, {8}, {dtype = "int32"})',
               'bi = ebl.model(ebl.models.mlp{sizes = {4, 16, 16, 3}}, '
                 .. '{energy = "bipc"})',
               'bi:infer(x, y, {steps = 40, state_lr = 0.1});',
               'bi:error("h1"):norm(), '
                 .. 'bi:error("h1", nil, "feedback"):norm()'}},
      {text = [[
Equilibrium propagation relaxes one energy, E = 1/2 sum ||v||^2 minus
the couplings <rho(v_dst), W rho(v_src)>, then relaxes again with the
output nudged by +beta and by -beta; the difference of the two gives the
gradient. Its activations belong to the nodes, its edges are linear.]],
       code = {'g = ebl.graph()',
               'gx = g:node{name = "x", shape = {4}, role = "input"}',
               'gh = g:node{name = "h", shape = {16}, '
                 .. 'activation = "sigmoid"}',
               'gy = g:node{name = "y", shape = {3}, role = "output", '
                 .. 'activation = "sigmoid"}',
               'g:edge(gx, gh, ebl.nn.linear(4, 16));',
               'g:edge(gh, gy, ebl.nn.linear(16, 3));',
               'ep = ebl.model(g, {energy = "ep", loss = "mse"})',
               'E, steps = ep:infer(x, ebl.rand{8, 3}, {beta = 0.2, '
                 .. 'steps = 100, state_lr = 0.2})', 'E, steps',
               'ep:grads()[1]:norm()'}},
    }},
    {title = 'Training on Fashion-MNIST', steps = {
      {text = [[
ebl.train runs epochs of inference and learning over a dataset and
prints a line per epoch. Fashion-MNIST holds 60000 small pictures of
clothes in 10 classes; one epoch on the first 5000 takes seconds.]],
       code = {'data = ebl.data.fashion_mnist()', 'data.train',
               'fm = ebl.model(ebl.models.mlp{sizes = {784, 128, 10}}, '
                 .. '{energy = "pc"})',
               's = ebl.train(fm, data.train, {epochs = 1, subset = 5000, '
                 .. 'test = data.test, test_subset = 2000, steps = 20, '
                 .. 'state_lr = 0.1})',
               's.test_acc'}},
      {text = [[
From here: `./ebl scripts/train.lua --help` lists the main job's flags;
docs/TRAINING.md describes the trainer, checkpoints and logs, and
docs/ENERGIES.md every equation the engine computes.]],
       code = {}},
    }},
  }

  local current = {lesson = nil, step = 1}
  local lesson = {}

  local function show_step()
    local l = LESSONS[current.lesson]
    local s = l.steps[current.step]
    io.write(('\n-- lesson %d, %s: step %d of %d\n\n%s\n'):format(
      current.lesson, l.title, current.step, #l.steps, s.text))
    if #s.code > 0 then
      io.write('\n')
      for _, line in ipairs(s.code) do io.write('    ', line, '\n') end
      io.write('\nType the lines, or ebl.lesson.run() to run them; '
        .. 'ebl.lesson.next() goes on.\n')
    end
  end

  local function need_lesson(fn)
    if current.lesson == nil then
      error(('lesson.%s: no lesson started: ebl.lesson(n) starts one '
        .. '(ebl.lessons() lists them)'):format(fn), 3)
    end
  end

  -- Runs one line as the prompt would: an expression shows its values.
  local function run_line(line, show)
    io.write('ebl> ', line, '\n')
    local chunk = load('return ' .. line, '=lesson', 't', _G)
    local expression = chunk ~= nil
    if not expression then
      local err
      chunk, err = load(line, '=lesson', 't', _G)
      if not chunk then error('lesson: ' .. err, 0) end
    end
    local out = table.pack(pcall(chunk))
    if not out[1] then error('lesson: ' .. tostring(out[2]), 0) end
    if expression and out.n > 1 and not line:find(';%s*$') then
      show(table.unpack(out, 2, out.n))
    end
  end

  function lesson.run()
    need_lesson('run')
    local show = require('ebl.repl').show
    for _, line in ipairs(LESSONS[current.lesson].steps[current.step].code)
    do
      run_line(line, show)
    end
  end

  function lesson.next()
    need_lesson('next')
    local l = LESSONS[current.lesson]
    if current.step < #l.steps then
      current.step = current.step + 1
      show_step()
    elseif current.lesson < #LESSONS then
      io.write(('\nLesson %d is done; ebl.lesson(%d) starts "%s".\n')
        :format(current.lesson, current.lesson + 1,
                LESSONS[current.lesson + 1].title))
    else
      io.write('\nThat was the last lesson.\n')
    end
  end

  function lesson.back()
    need_lesson('back')
    current.step = math.max(1, current.step - 1)
    show_step()
  end

  function lesson.again()
    need_lesson('again')
    show_step()
  end

  -- The steps of lesson n, for tests and for reading ahead.
  function lesson.steps(n)
    local l = LESSONS[n]
    if l == nil then
      error(('lesson.steps: no lesson %s (1..%d)'):format(tostring(n),
        #LESSONS), 2)
    end
    return l.steps
  end

  setmetatable(lesson, {__call = function(_, n)
    if math.type(n) ~= 'integer' or LESSONS[n] == nil then
      error(('lesson: no lesson %s: lessons are numbered 1..%d '
        .. '(ebl.lessons() lists them)'):format(tostring(n), #LESSONS), 2)
    end
    current.lesson, current.step = n, 1
    show_step()
  end})

  function ebl.lessons()
    io.write('Lessons (start one with ebl.lesson(n)):\n')
    for i, l in ipairs(LESSONS) do
      io.write(('  %d  %s (%d steps)\n'):format(i, l.title, #l.steps))
    end
    return #LESSONS
  end

  ebl.lesson = lesson
  local doc = ebl.doc
  doc(ebl.lessons, 'ebl.lessons() lists the lessons and returns how many '
    .. 'there are.')
  doc(lesson, 'ebl.lesson(n) starts lesson n; ebl.lesson.next(), .back() '
    .. 'and .again() walk through its steps; ebl.lesson.run() runs the '
    .. "current step's code as if typed at the prompt.")
  doc(lesson.run, "ebl.lesson.run() runs the current step's lines at a "
    .. 'pretend prompt, in the global environment.')
  doc(lesson.next, 'ebl.lesson.next() shows the next step.')
  doc(lesson.back, 'ebl.lesson.back() shows the step before.')
  doc(lesson.again, 'ebl.lesson.again() shows the current step again.')
  doc(lesson.steps, 'ebl.lesson.steps(n) -> the steps of lesson n: '
    .. '{text=, code={lines}}.')
end
