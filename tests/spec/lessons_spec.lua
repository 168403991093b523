-- The lessons: every step's code runs as written, the numbers they teach
-- hold (PC's gradients approach backprop's), and walking through them
-- (next, back, again, bad numbers) behaves.
local ebl = require 'ebl'

-- Runs fn with io.write and print captured; returns the text and what
-- fn returned (or raises its error after restoring both).
local function captured(fn)
  local out, write, print_ = {}, io.write, _G.print
  io.write = function(...)
    for _, s in ipairs({...}) do out[#out + 1] = tostring(s) end
  end
  _G.print = function(...)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    out[#out + 1] = table.concat(parts, '\t') .. '\n'
  end
  local ok, err = pcall(fn)
  io.write, _G.print = write, print_
  if not ok then error(err, 0) end
  return table.concat(out)
end

-- Runs every step of lesson n through ebl.lesson.run.
local function run_lesson(n)
  return captured(function()
    for s = 1, #ebl.lesson.steps(n) do
      if s == 1 then ebl.lesson(n) else ebl.lesson.next() end
      ebl.lesson.run()
    end
  end)
end

local HAVE_DATA = io.open('/usr/share/datasets/fashion-mnist/'
  .. 'train-images-idx3-ubyte.gz') ~= nil

describe('the lessons', function()
  local globals
  before_each(function()
    globals = {}
    for k in pairs(_G) do globals[k] = true end
  end)
  after_each(function()
    for k in pairs(_G) do
      if not globals[k] then _G[k] = nil end
    end
  end)

  it('are listed with their titles', function()
    local n
    local text = captured(function() n = ebl.lessons() end)
    assert.are.equal(6, n)
    assert.matches('1  Tensors at the prompt %(3 steps%)', text)
    assert.matches('4  Predictive coding approaches backprop', text)
  end)

  for n = 1, 5 do
    it(('run lesson %d as written'):format(n), function()
      local text = run_lesson(n)
      assert.matches('ebl> ', text)
      assert.is_nil(text:find('lesson: '), text)
    end)
  end

  it('run lesson 6 on Fashion-MNIST', function()
    if not HAVE_DATA then
      pending('no Fashion-MNIST at /usr/share/datasets/fashion-mnist')
      return
    end
    local text = run_lesson(6)
    assert.matches('epoch 1:', text)
    assert.is_true(_G.s.test_acc > 0.6, 'accuracy ' .. _G.s.test_acc)
  end)

  it('show tensors that behave as lesson 1 says', function()
    run_lesson(1)
    assert.are.same({6, 15}, _G.x:sum(2):totable())
    assert.are.same({{14, 32}, {32, 77}},
      ebl.matmul(_G.x, _G.x:transpose(1, 2)):totable())
  end)

  it('lower F during inference in lesson 2', function()
    run_lesson(2)
    local trace = _G.trace
    assert.is_true(trace[#trace] < trace[1], 'F did not fall')
    assert.is_true(_G.after < _G.before)
  end)

  it('bring PC within a percent of backprop in lesson 4', function()
    run_lesson(4)
    local gp, gb = _G.gp, _G.gb
    local cos = (gp * gb):sum():item() / (gp:norm() * gb:norm()):item()
    local ratio = (gp:norm() / gb:norm()):item()
    assert.is_true(cos > 0.999, 'cosine ' .. cos)
    assert.is_true(math.abs(ratio - 1) < 0.02, 'norm ratio ' .. ratio)
  end)

  it('step forward and back, and say where they end', function()
    local text = captured(function()
      ebl.lesson(1)
      ebl.lesson.back()
      ebl.lesson.again()
      ebl.lesson.next()
      ebl.lesson.next()
      ebl.lesson.next()
    end)
    assert.matches('step 1 of 3.*step 1 of 3.*step 1 of 3.*step 2 of 3'
      .. '.*step 3 of 3', text)
    assert.matches('Lesson 1 is done; ebl%.lesson%(2%) starts', text)
    text = captured(function()
      ebl.lesson(6)
      ebl.lesson.next()
      ebl.lesson.next()
    end)
    assert.matches('That was the last lesson', text)
  end)

  it('name a lesson that does not exist', function()
    assert.has_error(function() ebl.lesson(7) end,
      'lesson: no lesson 7: lessons are numbered 1..6 (ebl.lessons() '
      .. 'lists them)')
    assert.has_error(function() ebl.lesson('a') end,
      'lesson: no lesson a: lessons are numbered 1..6 (ebl.lessons() '
      .. 'lists them)')
    assert.has_error(function() ebl.lesson.steps(0) end,
      'lesson.steps: no lesson 0 (1..6)')
  end)
end)
