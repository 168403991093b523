-- The networks of Table 1 at full width: channel counts as in the table
-- and parameter counts computed by hand (3x3 and 1x1 convolutions with
-- bias, CIFAR-sized input 3x32x32, 10 classes); graph summaries.
local ebl = require 'ebl'

local function count(g)
  local n = 0
  for _, p in ipairs(ebl.model(g):params()) do n = n + p:numel() end
  return n
end

-- conv k x k from a to b channels, with bias.
local function conv(a, b, k) return a * b * k * k + b end
local function fc(a, b) return a * b + b end

local function channels(g)
  local out = {}
  for _, nd in ipairs(g.nodes) do out[nd.name] = nd.shape[1] end
  return out
end

describe('Table 1', function()
  it('hierarchical feedforward network', function()
    local g = ebl.models.hierarchical{}
    local c = channels(g)
    local want = {128, 256, 512, 120, 256, 80, 64, 100, 50}
    for i, w in ipairs(want) do assert.are.equal(w, c['n' .. i]) end
    assert.are.equal(512, c.fc)
    -- 32 -> 16 -> 8 -> 4 -> 2 after the four poolings: 50 x 2 x 2 in.
    local hand = conv(3, 128, 3) + conv(128, 256, 3) + conv(256, 512, 3)
      + conv(512, 120, 3) + conv(120, 256, 1) + conv(256, 80, 1)
      + conv(80, 64, 3) + conv(64, 100, 3) + conv(100, 50, 3)
      + fc(50 * 2 * 2, 512) + fc(512, 10)
    assert.are.equal(2340464, hand)
    assert.are.equal(hand, count(g))
    assert.are.equal(12, #g.nodes)
  end)

  it('skip-connection recurrent network, simple', function()
    local g = ebl.models.skiprec_simple{}
    local c = channels(g)
    local want = {64, 128, 256, 512, 200, 32}
    for i, w in ipairs(want) do assert.are.equal(w, c['n' .. i]) end
    assert.are.equal(8, #g.nodes)
    local forward = conv(3, 64, 3) + conv(64, 128, 3) + conv(128, 256, 3)
      + conv(256, 512, 3) + conv(512, 200, 3) + conv(200, 32, 3)
    local recurrent = conv(128, 128, 3) + conv(256, 256, 3)
      + conv(512, 512, 3) + conv(200, 200, 3) + conv(32, 32, 3)
    local skip = conv(128, 512, 3) + conv(256, 200, 3) + conv(512, 32, 3)
    local hand = forward + recurrent + skip + fc(32 * 32 * 32, 10)
    assert.are.equal(7523842, hand)
    assert.are.equal(hand, count(g))
    local kinds = {}
    for _, e in ipairs(g.edges) do kinds[e.kind] = (kinds[e.kind] or 0) + 1 end
    assert.are.same({forward = 7, recurrent = 5, skip = 3}, kinds)
  end)

  it('skip-connection recurrent network, complex (two states a, b)',
    function()
      local g = ebl.models.skiprec_complex{}
      local c = channels(g)
      local want = {n1 = 32, n2a = 64, n2b = 128, n3a = 256, n3b = 512,
        n4a = 1024, n4b = 768, n5a = 256, n5b = 128, n6a = 256, n6b = 64,
        fc = 512}
      for name, w in pairs(want) do assert.are.equal(w, c[name], name) end
      local hand = conv(3, 32, 3)
        + conv(32, 64, 3) + conv(64, 128, 1) + conv(128, 128, 3)
        + conv(128, 256, 3) + conv(256, 512, 1) + conv(512, 512, 3)
        + conv(512, 1024, 3) + conv(128, 1024, 3) + conv(1024, 768, 1)
        + conv(768, 768, 3)
        + conv(768, 256, 3) + conv(512, 256, 3) + conv(256, 128, 1)
        + conv(128, 128, 3)
        + conv(128, 256, 3) + conv(768, 256, 3) + conv(256, 64, 1)
        + conv(64, 64, 3)
        + fc(64 * 4 * 4, 512) + fc(512, 10)
      assert.are.equal(20736842, hand)
      assert.are.equal(hand, count(g))
    end)

  it('width scales the channels', function()
    local c = channels(ebl.models.skiprec_simple{width = 0.25})
    assert.are.same({16, 32, 64, 128, 50, 8},
      {c.n1, c.n2, c.n3, c.n4, c.n5, c.n6})
  end)
end)

describe('graph tools', function()
  local function small()
    local g = ebl.graph()
    local x = g:node{name = 'x', shape = {4}, role = 'input'}
    local h = g:node{name = 'h', shape = {3}}
    local y = g:node{name = 'y', shape = {2}, role = 'output'}
    g:edge(x, h, ebl.nn.chain(ebl.nn.linear(4, 3), ebl.nn.tanh()))
    g:edge(h, y, ebl.nn.linear(3, 2))
    g:edge(h, h, ebl.nn.linear(3, 3), {kind = 'recurrent'})
    return g
  end

  it('adjacency holds edge indices, rows the sources', function()
    assert.are.same({{0, 1, 0}, {0, 3, 2}, {0, 0, 0}},
      small():adjacency():totable())
  end)

  it('summary lists nodes, edges, parameters and state memory', function()
    local text = small():summary{batch = 128, quiet = true}
    assert.matches('3 nodes, 3 edges, 35 parameters', text)
    assert.matches('h %-> y%s+forward', text)
    assert.matches('h %-> h%s+recurrent%s+1', text)
    -- (4 + 3 + 2) floats x 128 samples x 4 bytes
    assert.matches(('%.2f MiB'):format(9 * 128 * 4 / 2^20), text, 1, true)
  end)

  it('the inference loop allocates no tensor per iteration', function()
    for _, energy in ipairs{'pc', 'bipc', 'ep'} do
      local g = ebl.graph()
      local x = g:node{name = 'x', shape = {1, 6, 6}, role = 'input'}
      local h = g:node{name = 'h', shape = {2, 3, 3}, activation = 'tanh'}
      local y = g:node{name = 'y', shape = {3}, role = 'output'}
      g:edge(x, h, ebl.nn.chain(ebl.nn.conv2d(1, 2, 3, {padding = 1}),
        ebl.nn.avg_pool2d(2)))
      g:edge(h, y, ebl.nn.chain(ebl.nn.flatten(), ebl.nn.linear(18, 3)))
      local m = ebl.model(g, {energy = energy})
      m:infer(ebl.randn{4, 1, 6, 6}, ebl.tensor({0, 1, 2, 0}, 'int32'),
        {steps = 2, state_lr = 0.05})
      local before = select(4, ebl.memory())
      for _ = 1, 20 do m:step() end
      assert.are.equal(before, select(4, ebl.memory()), energy)
    end
  end)
end)
