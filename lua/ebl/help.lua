-- The help system: help() gives a short tour, help(x) the text registered
-- for any ebl function or object (the registry lives in ebl._help_texts).
local M = {}

local TOUR = [[
ebl: energy-based local learning (predictive coding, BiPC, EP) in C.

At the prompt an expression prints its value; a statement just runs.
A trailing ';' hides the value. Tab completes names, fields, methods
and file names in strings. Ctrl-C stops running code; Ctrl-D leaves.

  help(f), ?f        the text of any ebl function or object
  ebl.<Tab>          everything ebl offers
  ebl.lessons()      lessons, step by step, from tensors to training

  tensors            ebl.tensor{{1, 2}, {3, 4}}  ebl.randn{2, 3}  x:cuda()
  layers             ebl.nn.linear(784, 256)  ebl.nn.conv2d(...)
  a network          g = ebl.graph(); g:node{...}; g:edge(a, b, layer)
                     or ebl.models.mlp{sizes = {784, 256, 10}}
  a model            m = ebl.model(g, {energy = 'pc'})  (bipc, ep, bp)
  one batch          F, steps, trace = m:infer(x, y); m:learn(opt)
  optimisers         ebl.optim.adam{lr = 1e-3}  .sgd  .lars  .lalr
  data, training     ebl.data.fashion_mnist()  ebl.train(m, data, {...})
  pictures           ebl.plot(trace)
  files              ebl.save(path, tensors)  ebl.load(path)
]]

-- Finds the dotted name of value v inside table t (depth-limited), for
-- titles such as "ebl.zeros".
local function find_name(t, v, prefix, depth, seen)
  if depth == 0 or seen[t] then return nil end
  seen[t] = true
  for k, x in pairs(t) do
    if type(k) == 'string' and not k:match('^_') then
      local name = prefix .. '.' .. k
      if rawequal(x, v) then return name end
      if type(x) == 'table' then
        local found = find_name(x, v, name, depth - 1, seen)
        if found then return found end
      end
    end
  end
end

-- Returns the help text of v, or nil. Objects without their own text
-- fall back to the text of their metatable (their class).
function M.text(texts, v)
  local text = texts[v]
  if text == nil then
    local mt = getmetatable(v)
    if type(mt) == 'table' then text = texts[mt] end
  end
  return text
end

-- Adds ebl.help (also the host's global help) to the module table.
function M.attach(ebl)
  local texts = ebl._help_texts
  function ebl.help(v, ...)
    if select('#', ...) == 0 and v == nil then
      io.write(TOUR)
      return
    end
    if type(v) == 'string' and ebl[v] ~= nil then v = ebl[v] end
    local text = M.text(texts, v)
    local name = find_name(ebl, v, 'ebl', 3, {}) or tostring(v)
    if text == nil then
      io.write('no help for ', name, '\n')
    else
      io.write(name, ': ', text:gsub('\n*$', ''), '\n')
    end
  end
  -- Registers help text for a Lua value: ebl.doc(f, 'text').
  function ebl.doc(v, text)
    texts[v] = text
    return v
  end
  texts[ebl.help] = 'help() prints a tour; help(x) prints the text of x.'
  texts[ebl.doc] = 'doc(v, text) registers text as the help of v; '
    .. 'returns v.'
end

return M
