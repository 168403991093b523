-- The Lua surface of the data layer: IDX files from Lua, datasets, the
-- loader (determinism, permutations, normalisation, flips and crops,
-- option errors, early exits) and the real Fashion-MNIST when present.
local ebl = require 'ebl'
local data = ebl.data

local FASHION = '/usr/share/datasets/fashion-mnist'

local function tmpname()
  local path = os.tmpname()
  return path
end

local function write(path, bytes)
  local f = assert(io.open(path, 'wb'))
  f:write(bytes)
  f:close()
end

-- A dataset of n images C x H x W with pixel values in lo..255 and
-- labels 0..n-1 (every sample its own class, so labels identify it).
local function synthetic(n, c, h, w, lo)
  ebl.manual_seed(11)
  local images = ebl.randint(lo or 0, 256, {n, c, h, w}, 'uint8')
  return data.dataset(images, ebl.arange(n, 'int32'))
end

-- Largest |a - b| over two tensors of one shape.
local function maxdiff(a, b)
  return (a:double() - b:double()):abs():max():item()
end

-- Every batch of epoch k: lists of x and y tensors.
local function collect(loader, k)
  local xs, ys = {}, {}
  for x, y in loader:epoch(k) do
    xs[#xs + 1], ys[#ys + 1] = x, y
  end
  return xs, ys
end

local function same_batches(xa, ya, xb, yb)
  if #xa ~= #xb then return false end
  for i = 1, #xa do
    if maxdiff(xa[i], xb[i]) ~= 0 or maxdiff(ya[i], yb[i]) ~= 0 then
      return false
    end
  end
  return true
end

describe('ebl.data.idx', function()
  it('reads a raw IDX file with its shape and values', function()
    local path = tmpname()
    write(path, '\0\0\8\2\0\0\0\2\0\0\0\3' .. string.char(0, 1, 2, 3, 4,
      255))
    local t = data.idx(path)
    assert.are.same({2, 3}, t:shape())
    assert.are.equal('uint8', t:dtype())
    assert.are.same({{0, 1, 2}, {3, 4, 255}}, t:totable())
    os.remove(path)
  end)

  it('names the file and the fault', function()
    local path = tmpname()
    write(path, '\0\0\8\2\0\0\0\2\0\0\0\3\1\2')
    local ok, err = pcall(data.idx, path)
    assert.is_false(ok)
    assert.matches('idx: ' .. path:gsub('%p', '%%%0')
      .. ': truncated %(expected 18 bytes, got 14%)', err)
    write(path, '\18\52\86\120')
    ok, err = pcall(data.idx, path)
    assert.matches('bad magic 0x12345678', err)
    os.remove(path)
  end)
end)

describe('datasets', function()
  it('know their size, shape and classes', function()
    local ds = synthetic(6, 3, 4, 5)
    assert.are.equal(6, #ds)
    assert.are.equal(6, ds.size)
    assert.are.same({3, 4, 5}, ds.shape)
    assert.are.equal(6, ds.num_classes)
    assert.are.equal('int32', ds.labels:dtype())
    local image, label = ds:sample(2)
    assert.are.same({3, 4, 5}, image:shape())
    assert.are.equal(1, label)
  end)

  it('say where they looked and how to get the data', function()
    local ok, err = pcall(data.fashion_mnist, '/nonexistent/fm')
    assert.is_false(ok)
    assert.matches('/nonexistent/fm/train%-images%-idx3%-ubyte%.gz', err)
    assert.matches('/nonexistent/fm/t10k%-labels%-idx1%-ubyte', err)
    assert.matches('apt%-get install dataset%-fashion%-mnist', err)
    ok, err = pcall(data.cifar10, '/nonexistent/c')
    assert.matches('/nonexistent/c/cifar%-10%-batches%-bin/test_batch%.bin',
      err)
    assert.matches('cifar%-10%-binary%.tar%.gz', err)
    ok, err = pcall(data.tiny_imagenet, '/nonexistent/t')
    assert.matches('/nonexistent/t/wnids%.txt', err)
    assert.matches('tiny%-imagenet%-200%.zip', err)
  end)

  it('read CIFAR-10 files written here', function()
    local dir = tmpname()
    os.remove(dir)
    os.execute("mkdir -p '" .. dir .. "'")
    for _, name in ipairs({'data_batch_1', 'data_batch_2', 'data_batch_3',
        'data_batch_4', 'data_batch_5', 'test_batch'}) do
      write(dir .. '/' .. name .. '.bin', string.char(7)
        .. string.rep('\3', 3072) .. string.char(2)
        .. string.rep('\9', 3072))
    end
    local d = data.cifar10(dir)
    assert.are.equal(10, #d.train)
    assert.are.same({3, 32, 32}, d.train.shape)
    assert.are.equal('horse', d.train.classes[7 + 1])
    assert.are.same({7, 2}, d.test.labels:totable())
    assert.are.equal(9, d.test.images[2]:max():item())
    write(dir .. '/test_batch.bin', string.rep('\0', 3000))
    local ok, err = pcall(data.cifar10, dir)
    assert.is_false(ok)
    assert.matches('test_batch%.bin: size 3000 bytes is not a nonzero '
      .. 'multiple of the 3073%-byte record', err)
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it('read a Tiny ImageNet tree', function()
    -- a 64 x 64 JPEG of RGB (200, 40, 40), written with libjpeg
    local hex =
    'ffd8ffe000104a46494600010100000100010000ffdb00430003020203020203' ..
    '03030304030304050805050404050a070706080c0a0c0c0b0a0b0b0d0e12100d' ..
    '0e110e0b0b1016101113141515150c0f171816141812141514ffdb0043010304' ..
    '0405040509050509140d0b0d1414141414141414141414141414141414141414' ..
    '141414141414141414141414141414141414141414141414141414141414ffc0' ..
    '0011080040004003012200021101031101ffc4001f0000010501010101010100' ..
    '000000000000000102030405060708090a0bffc400b510000201030302040305' ..
    '0504040000017d01020300041105122131410613516107227114328191a10823' ..
    '42b1c11552d1f02433627282090a161718191a25262728292a3435363738393a' ..
    '434445464748494a535455565758595a636465666768696a737475767778797a' ..
    '838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7' ..
    'b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1' ..
    'f2f3f4f5f6f7f8f9faffc4001f01000301010101010101010100000000000001' ..
    '02030405060708090a0bffc400b5110002010204040304070504040001027700' ..
    '0102031104052131061241510761711322328108144291a1b1c109233352f015' ..
    '6272d10a162434e125f11718191a262728292a35363738393a43444546474849' ..
    '4a535455565758595a636465666768696a737475767778797a82838485868788' ..
    '898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4' ..
    'c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8f9' ..
    'faffda000c03010002110311003f00f14a28a2bf373fb5428a28a0028a28a002' ..
    '8a28a0028a28a0028a28a0028a28a0028a28a0028a28a0028a28a0028a28a002' ..
    '8a28a0028a28a0028a28a0028a28a0028a28a00fffd9'
    local jpeg = hex:gsub('..', function(b)
      return string.char(tonumber(b, 16))
    end)
    local dir = tmpname()
    os.remove(dir)
    for _, sub in ipairs({'train/n01/images', 'train/n02/images',
        'val/images'}) do
      os.execute("mkdir -p '" .. dir .. '/' .. sub .. "'")
    end
    write(dir .. '/wnids.txt', 'n01\nn02\n')
    write(dir .. '/words.txt', 'n01\tred thing, crimson thing\n')
    for _, name in ipairs({'train/n01/images/n01_1.JPEG',
        'train/n01/images/n01_0.JPEG', 'train/n02/images/n02_0.JPEG',
        'val/images/val_0.JPEG'}) do
      write(dir .. '/' .. name, jpeg)
    end
    write(dir .. '/val/val_annotations.txt', 'val_0.JPEG\tn02\t0\t0\t9\t9\n')
    local d = data.tiny_imagenet(dir)
    assert.are.equal(3, #d.train)
    assert.are.same({3, 64, 64}, d.train.shape)
    assert.are.same({0, 0, 1}, d.train.labels:totable())
    assert.are.same({1}, d.test.labels:totable())
    assert.are.same({'red thing', 'n02'}, d.train.classes)
    assert.are.same({'n01', 'n02'}, d.test.wnids)
    local red = d.train.images[1][1]:double():mean():item()
    local green = d.train.images[1][2]:double():mean():item()
    assert.is_true(math.abs(red - 200) < 3 and math.abs(green - 40) < 3)
    write(dir .. '/train/n02/images/n02_0.JPEG', jpeg:sub(1, 300))
    local ok, err = pcall(data.tiny_imagenet, dir)
    assert.is_false(ok)
    assert.matches('n02_0%.JPEG', err)
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)

describe('ebl.data.loader', function()
  local ds = synthetic(50, 2, 4, 4)

  it('gives float32 x scaled to [0, 1] and int32 y', function()
    local loader = data.loader(ds, {batch = 16, shuffle = false})
    local xs, ys = collect(loader, 1)
    assert.are.equal(4, #xs)
    assert.are.equal(4, loader:batches())
    assert.are.equal(50, loader:epoch_size())
    assert.are.same({16, 2, 4, 4}, xs[1]:shape())
    assert.are.same({2, 2, 4, 4}, xs[4]:shape())
    assert.are.equal('float32', xs[1]:dtype())
    assert.are.equal('int32', ys[1]:dtype())
    local expected = ds.images:narrow(1, 1, 16):double() / 255
    assert.is_true(maxdiff(xs[1], expected) < 1e-7)
  end)

  it('repeats an epoch for a seed, with or without prefetch', function()
    local a = data.loader(ds, {batch = 8, seed = 5})
    local b = data.loader(ds, {batch = 8, seed = 5, prefetch = false})
    local c = data.loader(ds, {batch = 8, seed = 6})
    local xa, ya = collect(a, 3)
    local xb, yb = collect(b, 3)
    local xc, yc = collect(c, 3)
    assert.is_true(same_batches(xa, ya, xb, yb))
    assert.is_false(same_batches(xa, ya, xc, yc))
    local xn, yn = collect(a, 4)
    assert.is_false(same_batches(xa, ya, xn, yn))
    local xr, yr = collect(a, 3)
    assert.is_true(same_batches(xa, ya, xr, yr))
  end)

  it('is independent of the global generator and the thread count',
    function()
      local threads = ebl.get_num_threads()
      local a = data.loader(ds, {batch = 8, seed = 5})
      local xa, ya = collect(a, 2)
      ebl.manual_seed(999)
      ebl.randn(100)
      ebl.set_num_threads(1)
      local b = data.loader(ds, {batch = 8, seed = 5})
      local xb, yb = collect(b, 2)
      ebl.set_num_threads(threads)
      assert.is_true(same_batches(xa, ya, xb, yb))
    end)

  it('visits every sample once per epoch', function()
    local loader = data.loader(ds, {batch = 7, seed = 1})
    for k = 1, 3 do
      local seen, count = {}, 0
      for _, y in loader:epoch(k) do
        for _, label in ipairs(y:totable()) do
          assert.is_nil(seen[label])
          seen[label], count = true, count + 1
        end
      end
      assert.are.equal(50, count)
    end
  end)

  it('drops the last batch and takes a subset when asked', function()
    local loader = data.loader(ds, {batch = 8, drop_last = true,
      subset = 20, shuffle = true, seed = 3})
    local _, ys = collect(loader, 1)
    assert.are.equal(2, #ys)
    assert.are.equal(2, loader:batches())
    assert.are.equal(20, loader:epoch_size())
    for _, y in ipairs(ys) do
      assert.is_true(y:max():item() < 20)
    end
  end)

  it('normalises each channel to mean 0 and std 1', function()
    local loader = data.loader(ds, {batch = 50, normalize = true})
    local xs = collect(loader, 1)
    local x = xs[1]:double()
    for c = 1, 2 do
      local channel = x:select(2, c)
      assert.is_true(math.abs(channel:mean():item()) < 1e-6)
      local var = (channel * channel):mean():item()
      assert.is_true(math.abs(math.sqrt(var) - 1) < 1e-6)
    end
    assert.are.equal(2, #loader.mean)
  end)

  it('applies a given mean and std per channel', function()
    local loader = data.loader(ds, {batch = 50, shuffle = false,
      normalize = {mean = {0.5, 0.25}, std = 0.5}})
    local xs = collect(loader, 1)
    local raw = ds.images:double() / 255
    local expected = ebl.cat({(raw:narrow(2, 1, 1) - 0.5) / 0.5,
      (raw:narrow(2, 2, 1) - 0.25) / 0.5}, 2)
    assert.is_true(maxdiff(xs[1], expected) < 1e-6)
  end)

  it('flips by mirroring exactly', function()
    local loader = data.loader(ds, {batch = 50, shuffle = false,
      augment = {flip = true}, seed = 2})
    local x = collect(loader, 1)[1]
    local flipped, kept = 0, 0
    for i = 1, 50 do
      local got = x[i]:double()
      -- the loader's values: v / 255 in double, rounded to float32
      local image = (ds.images[i]:double() / 255):float():double()
      local mirror = image:clone()
      for j = 1, 4 do
        mirror:narrow(3, j, 1):copy(image:narrow(3, 5 - j, 1))
      end
      if maxdiff(got, image) == 0 then kept = kept + 1
      elseif maxdiff(got, mirror) == 0 then flipped = flipped + 1 end
    end
    assert.are.equal(50, kept + flipped)
    assert.is_true(flipped > 10 and kept > 10)
  end)

  it('crops by shifting at most the padding, zeros entering', function()
    local bright = synthetic(30, 1, 6, 6, 1)
    local loader = data.loader(bright, {batch = 30, shuffle = false,
      augment = {crop = 2}, seed = 4})
    local x = collect(loader, 1)[1]
    local shifted, zeros = 0, 0
    for i = 1, 30 do
      local got = x[i][1]:totable()
      local image = (bright.images[i][1]:double() / 255):totable()
      local found = false
      for dy = -2, 2 do
        for dx = -2, 2 do
          local ok = true
          for r = 1, 6 do
            for c = 1, 6 do
              local sr, sc = r + dy, c + dx
              local v = (sr >= 1 and sr <= 6 and sc >= 1 and sc <= 6)
                and image[sr][sc] or 0
              if math.abs(got[r][c] - v) > 1e-7 then ok = false end
            end
          end
          if ok and not found then
            found = true
            if dy ~= 0 or dx ~= 0 then shifted = shifted + 1 end
          end
        end
      end
      assert.is_true(found, 'sample ' .. i .. ' is no shift within 2')
      for r = 1, 6 do
        for c = 1, 6 do
          if got[r][c] == 0 then zeros = zeros + 1 end
        end
      end
    end
    assert.is_true(shifted > 15)
    assert.is_true(zeros > 0)
  end)

  it('refuses bad options naming argument and value', function()
    local function err(opts)
      local ok, msg = pcall(data.loader, ds, opts)
      assert.is_false(ok)
      return msg
    end
    assert.matches('loader: batch must be >= 1, got 0', err{batch = 0})
    assert.matches('loader: batch must be an integer, got 1.5',
      err{batch = 1.5})
    assert.matches("loader: unknown option 'bacth'", err{bacth = 4})
    assert.matches('loader: subset must be in 1..50, got 51',
      err{subset = 51})
    assert.matches('loader: augment.crop must be in 0..4, got %-1',
      err{augment = {crop = -1}})
    assert.matches("loader: unknown augment field 'rotate'",
      err{augment = {rotate = 1}})
    assert.matches('normalize.std%[2%] must be > 0, got 0',
      err{normalize = {mean = 0, std = {1, 0}}})
    assert.matches("dtype must be 'float32' or 'float64', got 'int32'",
      err{dtype = 'int32'})
    assert.matches('shuffle must be true or false, got 1', err{shuffle = 1})
    local loader = data.loader(ds)
    local ok, msg = pcall(loader.epoch, loader, -1)
    assert.is_false(ok)
    assert.matches('epoch must be an integer >= 0, got %-1', msg)
  end)

  it('survives a broken loop, a new epoch and collection', function()
    local loader = data.loader(ds, {batch = 4, seed = 8})
    for x in loader:epoch(1) do
      if x then break end
    end
    local first = collect(loader, 2)
    assert.are.equal(13, #first)
    local stale = loader:epoch(3)
    loader:epoch(4)
    local ok, msg = pcall(stale)
    assert.is_false(ok)
    assert.matches('epoch 3 was left', msg)
    loader = nil
    collectgarbage()
    collectgarbage()
    local closed = data.loader(ds, {batch = 4})
    closed:epoch(1)()
    closed:close()
    ok, msg = pcall(closed.epoch, closed, 1)
    assert.matches('loader: already closed', msg)
  end)

  it('has help texts', function()
    for _, name in ipairs({'idx', 'mnist', 'fashion_mnist', 'cifar10',
        'cifar100', 'tiny_imagenet', 'loader', 'dataset'}) do
      assert.is_string(ebl._help_texts[data[name]], name)
    end
    local loader = data.loader(ds)
    for _, name in ipairs({'epoch', 'batches', 'epoch_size', 'close'}) do
      assert.is_string(ebl._help_texts[loader[name]], name)
    end
  end)
end)

describe('Fashion-MNIST', function()
  it('loads 60000 + 10000 images of 1 x 28 x 28 with labels 0..9',
    function()
      local f = io.open(FASHION .. '/train-images-idx3-ubyte.gz', 'rb')
      if not f then
        pending(FASHION .. ' is absent (apt-get install '
          .. 'dataset-fashion-mnist)')
        return
      end
      f:close()
      local d = data.fashion_mnist()
      assert.are.same({60000, 1, 28, 28}, d.train.images:shape())
      assert.are.same({10000, 1, 28, 28}, d.test.images:shape())
      assert.are.equal(10000, #d.test)
      for _, ds in ipairs({d.train, d.test}) do
        assert.are.equal(0, ds.labels:min():item())
        assert.are.equal(9, ds.labels:max():item())
      end
      assert.are.equal('Ankle boot', d.train.classes[10])
      assert.are.equal(9, d.train.labels[1])
      local loader = data.loader(d.test, {batch = 1000, normalize = true})
      assert.is_true(math.abs(loader.mean[1] - 0.2868) < 1e-3)
    end)
end)

describe('dataset labels that once hung or were taken silently', function()
  local images = ebl.zeros{3, 1, 4, 4}:byte()

  -- The error message of ebl.data.dataset with these labels and opts.
  local function error_of(labels, opts)
    local ok, err = pcall(ebl.data.dataset, images, labels, opts)
    assert.is_false(ok)
    return tostring(err)
  end

  it('a label of 2^31 - 1 is an error, not 2^31 class names', function()
    assert.matches('dataset: labels must be in 0..1048575, got 2147483647',
      error_of(ebl.tensor{0, 1, 2 ^ 31 - 1}:int()), 1, true)
  end)

  it('negative labels and labels past classes are errors', function()
    assert.matches('dataset: labels must be in 0..1048575, got -1',
      error_of(ebl.tensor{0, -1, 5}:int()), 1, true)
    assert.matches('dataset: labels must be in 0..2, got 5',
      error_of(ebl.tensor{0, 1, 5}:int(), {classes = 3}), 1, true)
    assert.matches('dataset: labels must be in 0..1, got 2',
      error_of(ebl.tensor{0, 1, 2}:int(), {classes = {'a', 'b'}}), 1, true)
    assert.matches('dataset: classes must be a list of names or a count '
      .. 'in 0..1048576, got 1e+300',
      error_of(ebl.tensor{0, 1, 2}:int(), {classes = 1e300}), 1, true)
  end)
end)
