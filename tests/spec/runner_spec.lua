-- The scripts as a user runs them, on small MNIST-format files made
-- here. scripts/train.lua: its configuration lines, one line per epoch,
-- the JSON last line, bad flags, and a resume in a fresh process that
-- matches an uninterrupted run bit for bit. scripts/table3.lua: every
-- cell of the grid for a few batches over 2 seeds, and the table.
local ebl = require 'ebl'

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute('mkdir -p ' .. d))
  return d
end

-- Writes an IDX file: big-endian magic, sizes, then bytes.
local function write_idx(path, magic, dims, bytes)
  local f = assert(io.open(path, 'wb'))
  f:write(string.pack('>I4', magic))
  for _, n in ipairs(dims) do f:write(string.pack('>I4', n)) end
  f:write(bytes)
  f:close()
end

-- n images of side x side in 3 classes (class c lights rows 2c+1 and
-- 2c+2) in the four files of an MNIST folder.
local function mnist_folder(dir, n_train, n_test, side)
  local function split(n, seed, prefix)
    local pixels, labels = {}, {}
    local state = seed
    for i = 1, n do
      local c = (i * 5 + seed) % 3
      labels[i] = string.char(c)
      for p = 0, side * side - 1 do
        state = (state * 1103515245 + 12345) % 2147483648
        local noise = state % 70
        local row = p // side
        local lit = row == 2 * c + 1 or row == 2 * c + 2
        pixels[#pixels + 1] = string.char(noise + (lit and 170 or 0))
      end
    end
    write_idx(dir .. '/' .. prefix .. '-images-idx3-ubyte', 0x803,
      {n, side, side}, table.concat(pixels))
    write_idx(dir .. '/' .. prefix .. '-labels-idx1-ubyte', 0x801, {n},
      table.concat(labels))
  end
  split(n_train, 1, 'train')
  split(n_test, 2, 't10k')
end

-- Runs ./ebl scripts/train.lua with args; returns the exit status and
-- the lines of stdout and stderr together.
local function run(args, script)
  local p = assert(io.popen(('./ebl scripts/%s.lua %s 2>&1'):format(
    script or 'train', args)))
  local lines = {}
  for line in p:lines() do lines[#lines + 1] = line end
  local ok, _, code = p:close()
  return ok and 0 or code, lines
end

local dir = tmpdir()
mnist_folder(dir, 160, 40, 8)
local PLAIN = ('--data mnist --data-dir %s --hidden 12 --steps 5 '
  .. '--batch 32 --energy pc --lr 0.01'):format(dir)
local BASE = PLAIN .. ' --threads 1'

describe('scripts/train.lua', function()
  it('prints the configuration, a line per epoch and JSON last', function()
    local code, lines = run(BASE .. ' --epochs 2 --log ' .. dir
      .. '/log.jsonl')
    assert.are.equal(0, code, table.concat(lines, '\n'))
    assert.truthy(lines[1]:find('^data: mnist %(160 train, 40 test%), '
      .. 'samples 1x8x8'), lines[1])
    assert.are.equal('model: mlp 64-12-10 tanh, energy pc', lines[2])
    local epochs = 0
    for _, line in ipairs(lines) do
      if line:find('^epoch %d+: train loss [%d.]+ acc [%d.]+, test acc '
          .. '[%d.]+, %d+ samples/s %([%d.]+ s%)$') then
        epochs = epochs + 1
      end
    end
    assert.are.equal(2, epochs)
    local last = ebl.json.decode(lines[#lines])
    assert.are.equal(2, last.epochs)
    assert.is_number(last.test_acc)
    assert.is_true(last.train_seconds > 0 and last.samples_per_second > 0)
    assert.are.equal('pc', last.config.energy)
    assert.are.equal(5, last.config.steps)
    assert.are.equal('12', last.config.hidden)
    local n = 0
    for _ in io.lines(dir .. '/log.jsonl') do n = n + 1 end
    assert.are.equal(2, n)
  end)

  it('passes --backtrack to inference and says so', function()
    local code, lines = run(BASE .. ' --epochs 1 --state-lr 2 --backtrack')
    assert.are.equal(0, code, table.concat(lines, '\n'))
    assert.are.equal('inference: 5 steps, state lr 2 (sgd, backtracking), '
      .. 'tol 0', lines[3])
    assert.is_true(ebl.json.decode(lines[#lines]).config.backtrack)
  end)

  it('refuses bad flags with a usage message and status 1', function()
    for _, args in ipairs{'--bogus', '--epochs', '--epochs x',
        '--energy qc', '--hidden 12,a'} do
      local code, lines = run(args)
      assert.are.equal(1, code, args)
      local text = table.concat(lines, '\n')
      assert.truthy(text:find('usage: ebl scripts/train.lua', 1, true), args)
    end
    local code, lines = run('--help')
    assert.are.equal(0, code)
    assert.truthy(table.concat(lines, '\n'):find('--state-lr', 1, true))
  end)

  it('says what is missing: data, cuda', function()
    local code, lines = run('--data cifar10 --data-dir ' .. dir)
    assert.are.equal(1, code)
    assert.truthy(lines[1]:find('cifar10: dataset not found', 1, true),
      lines[1])
    code, lines = run('--device cuda')
    assert.are.equal(1, code)
    assert.truthy(lines[1]:find('--device cuda: no GPU to run on (', 1,
      true), lines[1])
  end)

  it('resumes in a fresh process bit for bit', function()
    local flags = BASE .. ' --schedule none --epochs '
    local whole, part = dir .. '/whole.st', dir .. '/part.st'
    assert.are.equal(0, (run(flags .. '2 --save ' .. whole)))
    assert.are.equal(0, (run(flags .. '1 --save ' .. part)))
    local code, lines = run(flags .. '2 --resume ' .. part .. ' --save '
      .. part)
    assert.are.equal(0, code, table.concat(lines, '\n'))
    assert.are.equal(2, ebl.json.decode(lines[#lines]).epochs)
    local a, ma = ebl.load(whole)
    local b, mb = ebl.load(part)
    assert.are.equal('2', ma.epoch)
    assert.are.equal('2', mb.epoch)
    local count = 0
    for name, t in pairs(a) do
      assert.are.equal(t:numel(), t:eq(b[name]):sum():item(), name)
      count = count + 1
    end
    assert.are.equal(4 + 8, count)       -- 4 parameters, Adam's m and v
  end)

  it("resumes with the saved run's thread count", function()
    local path = dir .. '/threads.st'
    assert.are.equal(0, (run(PLAIN .. ' --threads 2 --epochs 1 --save '
      .. path)))
    local code, lines = run(PLAIN .. ' --epochs 2 --resume ' .. path)
    assert.are.equal(0, code, table.concat(lines, '\n'))
    assert.are.equal(2, ebl.json.decode(lines[#lines]).config.threads)
    assert.truthy(lines[5]:find('^run: seed 1, 2 of %d+ cores'), lines[5])
  end)

  teardown(function() os.execute('rm -rf ' .. dir) end)
end)

describe('scripts/table3.lua', function()
  local dir16 = tmpdir()
  mnist_folder(dir16, 64, 16, 16)

  it('runs every cell over 2 seeds and writes the table', function()
    local out = dir16 .. '/t.md'
    local code, lines = run(('--data mnist --data-dir %s --networks '
      .. 'hierarchical,skiprec-simple --energies pc,bipc,ep,bp --optims '
      .. 'adam,lalr --seeds 1,2 --width 0.03 --batch 8 --max-batches 2 '
      .. '--steps 3 --test-subset 16 --threads 1 --out %s'):format(dir16,
      out), 'table3')
    assert.are.equal(0, code, table.concat(lines, '\n'))
    local runs = 0
    for _, line in ipairs(lines) do
      if line:find(', seed [12]: [%d.]+%% %(') then runs = runs + 1 end
    end
    assert.are.equal(2 * 3 * 2 * 2, runs)   -- EP's cells do not run
    local rows = {}
    for line in io.lines(out) do
      local net, method, cell = line:match('^| ([%w-]+) | ([^|]+) | '
        .. '([^|]+) |$')
      if net and net ~= 'network' then
        rows[#rows + 1] = {net, method, cell}
      end
    end
    assert.are.equal(16, #rows)
    assert.are.same({'hierarchical', 'PC (Adam)'}, {rows[1][1], rows[1][2]})
    assert.are.same({'skiprec-simple', 'backprop (LALR)'},
      {rows[16][1], rows[16][2]})
    for _, r in ipairs(rows) do
      if r[2]:find('^EP') then
        assert.are.equal('n/a', r[3])
      else
        local mean, std = r[3]:match('^([%d.]+) ± ([%d.]+)$')
        assert.truthy(mean, r[3])
        assert.is_true(tonumber(mean) >= 0 and tonumber(mean) <= 100)
        assert.is_true(tonumber(std) >= 0)
      end
    end
  end)

  it('says when the data is not on the machine', function()
    local code, lines = run('--data cifar10,mnist --data-dir ' .. dir16
      .. '/none --threads 1', 'table3')
    assert.are.equal(1, code)
    local text = table.concat(lines, '\n')
    assert.truthy(text:find('cifar10 is not on this machine', 1, true), text)
    assert.truthy(text:find('no dataset of the grid is on this machine',
      1, true), text)
  end)

  teardown(function() os.execute('rm -rf ' .. dir16) end)
end)
