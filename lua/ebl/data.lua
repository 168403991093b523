-- Datasets and batches. ebl.data.mnist, fashion_mnist, cifar10,
-- cifar100 and tiny_imagenet find a dataset's files, read them through
-- the C readers (src/data/) and return {train = ds, test = ds};
-- ebl.data.loader(ds, opts) iterates a dataset in float batches with
-- shuffling, augmentation, normalisation and a prefetch thread.
return function(ebl)
  local data = ebl.data
  local doc = ebl.doc

  ---------------------------------------------------------------------
  -- Datasets

  local Dataset = {}
  Dataset.__index = Dataset
  Dataset.__len = function(ds) return ds.size end
  Dataset.__tostring = function(ds)
    return ('dataset %s: %d samples of %s (uint8), %d classes'):format(
      ds.name, ds.size, table.concat(ds.shape, 'x'), ds.num_classes)
  end

  -- Names '0', '1', ... for classes without known names.
  local function numbered(n)
    local names = {}
    for i = 1, n do names[i] = tostring(i - 1) end
    return names
  end

  -- A dataset table over images (uint8 N x C x H x W) and labels.
  local function make_dataset(name, images, labels, classes, extra)
    local s = images:shape()
    local ds = {name = name, images = images, labels = labels,
      size = s[1], shape = {s[2], s[3], s[4]}, classes = classes,
      num_classes = #classes}
    for k, v in pairs(extra or {}) do ds[k] = v end
    return setmetatable(ds, Dataset)
  end

  function Dataset:sample(i)
    if math.type(i) ~= 'integer' or i < 1 or i > self.size then
      error(('sample: index must be in 1..%d, got %s'):format(self.size,
        tostring(i)), 2)
    end
    return self.images[i], self.labels[i]
  end

  doc(Dataset, 'A dataset: ds.images (uint8 N x C x H x W), ds.labels '
    .. '(int32 N, class values 0..k-1), ds.size (also #ds), ds.shape '
    .. '({C, H, W}), ds.classes (names, ds.classes[label + 1]), '
    .. 'ds.num_classes, ds.name; ds:sample(i) -> image, label. '
    .. 'Batch it with ebl.data.loader(ds, opts).')
  doc(Dataset.sample, 'ds:sample(i) -> image i (C x H x W uint8 view) '
    .. 'and its label (a number, 0-based class value).')

  -- The most classes a dataset may have: class names are made for each.
  local MAX_CLASSES = 1 << 20

  -- Checks labels (int32) against classes (nil, a count or a list of
  -- names); returns the list or the count.
  local function check_classes(classes, labels)
    local n = type(classes) == 'table' and #classes or classes
    if n ~= nil and (math.type(n) ~= 'integer' or n < 0
        or n > MAX_CLASSES) then
      error(('dataset: classes must be a list of names or a count in '
        .. '0..%d, got %s'):format(MAX_CLASSES, tostring(classes)), 3)
    end
    if labels:numel() == 0 then return classes or 0 end
    local lo, hi = labels:min():item(), labels:max():item()
    local limit = (n or MAX_CLASSES) - 1
    if lo < 0 or hi > limit then
      error(('dataset: labels must be in 0..%d, got %d'):format(limit,
        lo < 0 and lo or hi), 3)
    end
    return classes or hi + 1
  end

  data.dataset = doc(function(images, labels, opts)
    if not ebl.is_tensor(images) or images:dtype() ~= 'uint8'
        or (images:dim() ~= 3 and images:dim() ~= 4) then
      error('dataset: images must be a uint8 tensor N x C x H x W '
        .. '(or N x H x W)', 2)
    end
    if images:dim() == 3 then images = images:unsqueeze(2) end
    if not ebl.is_tensor(labels) or labels:dim() ~= 1
        or labels:size(1) ~= images:size(1) then
      error(('dataset: labels must be a 1-D tensor of %d labels')
        :format(images:size(1)), 2)
    end
    labels = labels:to('int32')
    opts = opts or {}
    local classes = check_classes(opts.classes, labels)
    if type(classes) ~= 'table' then classes = numbered(classes) end
    return make_dataset(opts.name or 'custom', images, labels, classes)
  end, 'dataset(images, labels [, {classes=, name=}]) -> a dataset over '
    .. 'tensors you have: images uint8 N x C x H x W (or N x H x W), '
    .. 'labels 0..k-1. classes: a list of names or a count.')

  ---------------------------------------------------------------------
  -- Finding files

  local function exists(path)
    local f = io.open(path, 'rb')
    if f then f:close() end
    return f ~= nil
  end

  -- The first of names found in one of dirs, or nil; every path looked
  -- at in vain is added to tried.
  local function find(dirs, names, tried)
    for _, d in ipairs(dirs) do
      for _, n in ipairs(names) do
        local p = d .. '/' .. n
        if exists(p) then return p end
        tried[#tried + 1] = p
      end
    end
  end

  -- Where to look: dir as given, else $EBL_DATA/<name> and
  -- /usr/share/datasets/<name>.
  local function search_dirs(dir, name, fn)
    if dir ~= nil and type(dir) ~= 'string' then
      error(("bad argument #1 to '%s' (folder name expected, got %s)")
        :format(fn, type(dir)), 0)
    end
    if dir then return {dir} end
    local dirs = {}
    local env = os.getenv('EBL_DATA')
    if env and env ~= '' then dirs[1] = env .. '/' .. name end
    dirs[#dirs + 1] = '/usr/share/datasets/' .. name
    return dirs
  end

  -- Errors of the dataset functions carry no position, like those of
  -- the C readers: the message says all.
  local function not_found(fn, tried, how)
    error(('%s: dataset not found; looked for:\n  %s\n%s'):format(fn,
      table.concat(tried, '\n  '), how), 0)
  end

  -- Lines of a text file (nil when it cannot be read).
  local function read_lines(path)
    local f = io.open(path, 'r')
    if not f then return nil end
    local lines = {}
    for line in f:lines() do
      line = line:gsub('%s+$', '')
      if line ~= '' then lines[#lines + 1] = line end
    end
    f:close()
    return lines
  end

  ---------------------------------------------------------------------
  -- MNIST and Fashion-MNIST

  local IDX_BASES = {
    train_images = 'train-images-idx3-ubyte',
    train_labels = 'train-labels-idx1-ubyte',
    test_images = 't10k-images-idx3-ubyte',
    test_labels = 't10k-labels-idx1-ubyte',
  }
  local IDX_ORDER = {'train_images', 'train_labels', 'test_images',
    'test_labels'}

  -- The spellings a file goes by: gzipped or not, '-idx' or '.idx'.
  local function idx_names(base)
    local dotted = base:gsub('%-idx', '.idx')
    return {base .. '.gz', base, dotted .. '.gz', dotted}
  end

  -- Reads the four IDX files of an MNIST-style dataset.
  local function mnist_style(fn, dir, name, classes, how)
    local dirs = search_dirs(dir, name, fn)
    local paths, tried = {}, {}
    for _, key in ipairs(IDX_ORDER) do
      paths[key] = find(dirs, idx_names(IDX_BASES[key]), tried)
    end
    for _, key in ipairs(IDX_ORDER) do
      if not paths[key] then not_found(fn, tried, how) end
    end
    local result = {}
    for _, split in ipairs({'train', 'test'}) do
      local images, labels = data._mnist(paths[split .. '_images'],
        paths[split .. '_labels'], #classes)
      result[split] = make_dataset(fn .. '/' .. split, images, labels,
        classes)
    end
    return result
  end

  local FASHION_CLASSES = {'T-shirt/top', 'Trouser', 'Pullover', 'Dress',
    'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'}

  data.fashion_mnist = doc(function(dir)
    return mnist_style('fashion_mnist', dir, 'fashion-mnist',
      FASHION_CLASSES, 'get it with: apt-get install dataset-fashion-mnist'
      .. ' (or put the four files of '
      .. 'https://github.com/zalandoresearch/fashion-mnist in a folder '
      .. 'and pass it)')
  end, 'fashion_mnist([dir]) -> {train = ds, test = ds}: 60000 and 10000 '
    .. '1 x 28 x 28 images of 10 kinds of clothing. dir defaults to '
    .. '$EBL_DATA/fashion-mnist, then /usr/share/datasets/fashion-mnist '
    .. '(apt-get install dataset-fashion-mnist); files may be gzipped '
    .. 'or not.\n  local d = ebl.data.fashion_mnist(); print(#d.train)')

  data.mnist = doc(function(dir)
    return mnist_style('mnist', dir, 'mnist', numbered(10),
      'get it: download train-images-idx3-ubyte.gz, '
      .. 'train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and '
      .. 't10k-labels-idx1-ubyte.gz from https://yann.lecun.com/exdb/mnist/'
      .. ' (or a mirror) into a folder and pass it')
  end, 'mnist([dir]) -> {train = ds, test = ds}: handwritten digits, '
    .. '1 x 28 x 28, classes 0..9, from the four IDX files (gzipped or '
    .. 'not) in dir (default $EBL_DATA/mnist, then '
    .. '/usr/share/datasets/mnist).')

  ---------------------------------------------------------------------
  -- CIFAR

  local CIFAR10_CLASSES = {'airplane', 'automobile', 'bird', 'cat', 'deer',
    'dog', 'frog', 'horse', 'ship', 'truck'}

  -- The first of dirs holding every file in names, or an error listing
  -- every path looked at.
  local function find_folder(fn, dirs, names, how)
    local tried = {}
    for _, d in ipairs(dirs) do
      local missing = false
      for _, n in ipairs(names) do
        local p = d .. '/' .. n
        if not exists(p) then
          tried[#tried + 1] = p
          missing = true
        end
      end
      if not missing then return d end
    end
    not_found(fn, tried, how)
  end

  -- dir itself and the folder the archive unpacks to, under each
  -- search folder.
  local function with_subfolder(dirs, sub)
    local all = {}
    for _, d in ipairs(dirs) do
      all[#all + 1] = d
      if d:sub(-#sub - 1) ~= '/' .. sub then
        all[#all + 1] = d .. '/' .. sub
      end
    end
    return all
  end

  -- Names from a file of one name a line, if it has n of them.
  local function names_from(path, n)
    local lines = read_lines(path)
    if lines and #lines == n then return lines end
    return numbered(n)
  end

  data.cifar10 = doc(function(dir)
    local dirs = with_subfolder(search_dirs(dir, 'cifar-10', 'cifar10'),
      'cifar-10-batches-bin')
    local train = {}
    for i = 1, 5 do train[i] = ('data_batch_%d.bin'):format(i) end
    local all = {table.unpack(train)}
    all[6] = 'test_batch.bin'
    local d = find_folder('cifar10', dirs, all, 'get it: download '
      .. 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz and '
      .. 'unpack it (tar xzf) into the folder you pass')
    local classes = read_lines(d .. '/batches.meta.txt')
    if not classes or #classes ~= 10 then classes = CIFAR10_CLASSES end
    for i, n in ipairs(train) do train[i] = d .. '/' .. n end
    local result = {}
    local images, labels = data._cifar(10, train)
    result.train = make_dataset('cifar10/train', images, labels, classes)
    images, labels = data._cifar(10, {d .. '/test_batch.bin'})
    result.test = make_dataset('cifar10/test', images, labels, classes)
    return result
  end, 'cifar10([dir]) -> {train = ds, test = ds}: 50000 and 10000 '
    .. '3 x 32 x 32 colour images in 10 classes, from the binary version '
    .. '(data_batch_1..5.bin, test_batch.bin) in dir or '
    .. 'dir/cifar-10-batches-bin (default $EBL_DATA/cifar-10, then '
    .. '/usr/share/datasets/cifar-10).')

  data.cifar100 = doc(function(dir)
    local dirs = with_subfolder(search_dirs(dir, 'cifar-100', 'cifar100'),
      'cifar-100-binary')
    local d = find_folder('cifar100', dirs, {'train.bin', 'test.bin'},
      'get it: download '
      .. 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz and '
      .. 'unpack it (tar xzf) into the folder you pass')
    local fine = names_from(d .. '/fine_label_names.txt', 100)
    local coarse = names_from(d .. '/coarse_label_names.txt', 20)
    local result = {}
    for _, split in ipairs({'train', 'test'}) do
      local images, labels, superclasses = data._cifar(100,
        {d .. '/' .. split .. '.bin'})
      result[split] = make_dataset('cifar100/' .. split, images, labels,
        fine, {coarse = superclasses, coarse_classes = coarse})
    end
    return result
  end, 'cifar100([dir]) -> {train = ds, test = ds}: 50000 and 10000 '
    .. '3 x 32 x 32 images; ds.labels are the 100 fine classes, '
    .. 'ds.coarse (int32) the 20 superclasses named in '
    .. 'ds.coarse_classes. Files train.bin and test.bin in dir or '
    .. 'dir/cifar-100-binary (default $EBL_DATA/cifar-100, then '
    .. '/usr/share/datasets/cifar-100).')

  ---------------------------------------------------------------------
  -- Tiny ImageNet

  -- Short names of the wnids from words.txt ("n01443537\tgoldfish, ..."
  -- gives "goldfish"); a wnid without a line keeps its id.
  local function wnid_names(d, wnids)
    local words = {}
    local f = io.open(d .. '/words.txt', 'r')
    if f then
      for line in f:lines() do
        local id, text = line:match('^(%S+)\t([^,]+)')
        if id then words[id] = text:gsub('%s+$', '') end
      end
      f:close()
    end
    local names = {}
    for i, id in ipairs(wnids) do names[i] = words[id] or id end
    return names
  end

  data.tiny_imagenet = doc(function(dir)
    local dirs = with_subfolder(search_dirs(dir, 'tiny-imagenet-200',
      'tiny_imagenet'), 'tiny-imagenet-200')
    local d = find_folder('tiny_imagenet', dirs,
      {'wnids.txt', 'val/val_annotations.txt'}, 'get it: download '
      .. 'http://cs231n.stanford.edu/tiny-imagenet-200.zip and unzip it '
      .. 'into the folder you pass')
    local ti, tl, vi, vl, wnids = data._tiny_imagenet(d)
    local names = wnid_names(d, wnids)
    return {
      train = make_dataset('tiny_imagenet/train', ti, tl, names,
        {wnids = wnids}),
      test = make_dataset('tiny_imagenet/val', vi, vl, names,
        {wnids = wnids}),
    }
  end, 'tiny_imagenet([dir]) -> {train = ds, test = ds}: 200 classes of '
    .. '3 x 64 x 64 images (100000 train/, and the 10000 labelled val/ '
    .. 'images as test: the test/ folder has no labels). Labels follow '
    .. 'wnids.txt; ds.wnids are the ids, ds.classes short names from '
    .. 'words.txt. JPEGs are decoded in parallel; grayscale ones become '
    .. 'RGB. dir or dir/tiny-imagenet-200 (default '
    .. '$EBL_DATA/tiny-imagenet-200, then '
    .. '/usr/share/datasets/tiny-imagenet-200).')

  ---------------------------------------------------------------------
  -- The loader

  local Loader = {}
  Loader.__index = Loader

  local LOADER_OPTIONS = {'batch', 'shuffle', 'seed', 'normalize',
    'augment', 'drop_last', 'subset', 'dtype', 'prefetch'}

  -- Option errors carry no position: data.loader adds the caller's.
  local function fail(fmt, ...)
    error('loader: ' .. fmt:format(...), 0)
  end

  local function show(v)
    return type(v) == 'string' and ("'" .. v .. "'") or tostring(v)
  end

  -- An integer option >= lo (and <= hi if given), or def when nil;
  -- label names it in errors (default: name).
  local function int_option(opts, name, def, lo, hi, label)
    local v = opts[name]
    if v == nil then return def end
    name = label or name
    if math.type(v) ~= 'integer' and not (type(v) == 'number'
        and v == math.floor(v) and v == v) then
      fail('%s must be an integer, got %s', name, show(v))
    end
    v = math.tointeger(v)
    if v < lo or (hi and v > hi) then
      if hi then fail('%s must be in %d..%d, got %d', name, lo, hi, v) end
      fail('%s must be >= %d, got %d', name, lo, v)
    end
    return v
  end

  local function bool_option(opts, name, def)
    local v = opts[name]
    if v == nil then return def end
    if type(v) ~= 'boolean' then
      fail('%s must be true or false, got %s', name, show(v))
    end
    return v
  end

  -- Checks that t has only the names in the list known.
  local function check_names(t, known, what)
    local set = {}
    for _, k in ipairs(known) do set[k] = true end
    for k in pairs(t) do
      if not set[k] then
        fail("unknown %s '%s' (known: %s)", what, tostring(k),
          table.concat(known, ', '))
      end
    end
  end

  -- A per-channel list from a number or a list of 1 or C numbers.
  local function channel_list(v, name, channels)
    if type(v) == 'number' then v = {v} end
    if type(v) ~= 'table' or (#v ~= 1 and #v ~= channels) then
      fail('normalize.%s must be a number or a list of 1 or %d numbers, '
        .. 'got %s', name, channels, show(v))
    end
    local list = {}
    for c = 1, channels do
      local x = v[#v == 1 and 1 or c]
      if type(x) ~= 'number' or x ~= x then
        fail('normalize.%s[%d] must be a number, got %s', name, c, show(x))
      end
      if name == 'std' and not (x > 0) then
        fail('normalize.std[%d] must be > 0, got %s', c, show(x))
      end
      list[c] = x
    end
    return list
  end

  -- mean and std from the normalize option (nil when there is none).
  local function normalization(v, ds, count)
    if v == nil or v == false then return nil end
    local channels = ds.images:size(2)
    if v == true then
      local mean, std = data._stats(ds.images, count)
      for c = 1, channels do
        if std[c] == 0 then
          fail('normalize = true: channel %d is constant (std 0)', c)
        end
      end
      return mean, std
    end
    if type(v) ~= 'table' then
      fail('normalize must be true, false or {mean=, std=}, got %s',
        show(v))
    end
    check_names(v, {'mean', 'std'}, 'normalize field')
    return channel_list(v.mean, 'mean', channels),
      channel_list(v.std, 'std', channels)
  end

  -- crop and flip from the augment option.
  local function augmentation(v, ds)
    if v == nil or v == false then return 0, false end
    if type(v) ~= 'table' then
      fail('augment must be a table {crop=, flip=}, got %s', show(v))
    end
    check_names(v, {'crop', 'flip'}, 'augment field')
    local side = math.min(ds.images:size(3), ds.images:size(4))
    local crop = int_option(v, 'crop', 0, 0, side, 'augment.crop')
    local flip = v.flip
    if flip ~= nil and type(flip) ~= 'boolean' then
      fail('augment.flip must be true or false, got %s', show(flip))
    end
    return crop, flip or false
  end

  -- The checked dataset argument.
  local function check_dataset(ds)
    if type(ds) ~= 'table' or not ebl.is_tensor(ds.images)
        or not ebl.is_tensor(ds.labels) then
      error("bad argument #1 to 'loader' (dataset expected: a table "
        .. 'with images and labels, got ' .. type(ds) .. ')', 3)
    end
    if ds.images:dtype() ~= 'uint8' or ds.images:dim() ~= 4 then
      error("bad argument #1 to 'loader' (images must be uint8 "
        .. 'N x C x H x W)', 3)
    end
  end

  -- The configuration table of the C loader from the user's options.
  local function loader_config(ds, opts)
    check_names(opts, LOADER_OPTIONS, 'option')
    local n = ds.images:size(1)
    local c = {
      batch = int_option(opts, 'batch', 128, 1),
      shuffle = bool_option(opts, 'shuffle', true),
      seed = int_option(opts, 'seed', data._rng_seed(), 0),
      drop_last = bool_option(opts, 'drop_last', false),
      subset = int_option(opts, 'subset', n, 1, math.max(n, 1)),
      prefetch = bool_option(opts, 'prefetch', true),
    }
    local dtype = opts.dtype or 'float32'
    if dtype ~= 'float32' and dtype ~= 'float64' then
      fail("dtype must be 'float32' or 'float64', got %s", show(dtype))
    end
    c.dtype = dtype
    c.crop, c.flip = augmentation(opts.augment, ds)
    c.mean, c.std = normalization(opts.normalize, ds, c.subset)
    return c
  end

  data.loader = doc(function(ds, opts)
    check_dataset(ds)
    if opts ~= nil and type(opts) ~= 'table' then
      error("bad argument #2 to 'loader' (options table expected, got "
        .. type(opts) .. ')', 2)
    end
    local ok, config = pcall(loader_config, ds, opts or {})
    if not ok then error(config, 2) end
    local core = data._loader(ds.images, ds.labels, config)
    local mean, std = core:norm()
    return setmetatable({core = core, dataset = ds, options = config,
      mean = mean, std = std, generation = 0, last_epoch = 0}, Loader)
  end, 'loader(ds, {batch=128, shuffle=true, seed=, normalize=, augment=, '
    .. "drop_last=false, subset=, dtype='float32', prefetch=true}) -> a "
    .. 'loader giving float batches x (batch x C x H x W, pixels / 255, '
    .. 'then (x - mean) / std per channel) and int32 labels y:\n'
    .. '  for x, y in loader:epoch(k) do ... end\n'
    .. 'seed: the order of epoch k is a function of (seed, k) only '
    .. '(default: the seed of ebl.manual_seed). normalize: true (mean and '
    .. 'std of the dataset) or {mean={...}, std={...}}. augment: '
    .. '{crop=4 (random shift within a zero padding of 4), flip=true '
    .. '(mirror left-right half the time)}. subset=N: the first N '
    .. 'samples. A thread prepares the next batch; batches are the same '
    .. 'without it (prefetch=false).')

  function Loader:epoch(k)
    if k == nil then k = self.last_epoch + 1 end
    if math.type(k) ~= 'integer' or k < 0 then
      error(('loader: epoch must be an integer >= 0, got %s'):format(
        show(k)), 2)
    end
    self.core:start(k)
    self.last_epoch = k
    self.generation = self.generation + 1
    local generation, core = self.generation, self.core
    return function()
      if self.generation ~= generation then
        error(('loader: epoch %d was left for a later loader:epoch()')
          :format(k), 2)
      end
      return core:next()
    end
  end

  function Loader:batches()
    local _, batches = self.core:sizes()
    return batches
  end

  function Loader:epoch_size()
    return (self.core:sizes())
  end

  function Loader:close()
    self.core:close()
  end

  Loader.__len = Loader.batches
  Loader.__close = Loader.close
  Loader.__tostring = function(self)
    local c = self.options
    return ('loader over %s: %d samples, %d batches of %d%s%s'):format(
      self.dataset.name or 'a dataset', self:epoch_size(), self:batches(),
      c.batch, c.shuffle and ', shuffled' or '',
      (c.crop > 0 or c.flip) and ', augmented' or '')
  end

  doc(Loader, 'A batch loader (ebl.data.loader): loader:epoch([k]), '
    .. 'loader:batches(), loader:epoch_size(), loader:close(); '
    .. 'loader.mean and loader.std are what it applies.')
  doc(Loader.epoch, 'loader:epoch([k]) -> an iterator of the batches '
    .. 'x, y of epoch k (default: the one after the last):\n'
    .. '  for x, y in loader:epoch(k) do ... end\n'
    .. 'The order depends only on the seed and k, so a resumed run sees '
    .. 'the same batches. Breaking out early is fine.')
  doc(Loader.batches, 'loader:batches() -> batches per epoch (also '
    .. '#loader).')
  doc(Loader.epoch_size, 'loader:epoch_size() -> samples per epoch.')
  doc(Loader.close, 'loader:close() stops the prefetch thread and frees '
    .. 'the loader now rather than at collection.')

  return data
end
