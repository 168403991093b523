"""The trainer's display: on a terminal a progress bar redrawn in place
(carriage returns, no new lines until the epoch ends); through a pipe
exactly one line per epoch."""
import re

import pexpect

from tap import EBL, ROOT, case, done, run

# A tiny synthetic dataset (3 classes of 4 x 4 images) trained 2 epochs.
TRAIN = '''
ebl.manual_seed(1)
local n = 2048
local noise = (ebl.rand{n, 16} * 60):totable()
local images, labels = {}, {}
for i = 1, n do
  local c = i % 3
  local img = {}
  for p = 1, 16 do
    img[p] = math.floor(noise[i][p] + ((p - 1) // 4 == c + 1 and 180 or 0))
  end
  images[i], labels[i] = img, c
end
local ds = ebl.data.dataset(ebl.tensor(images, 'uint8'):reshape{n, 1, 4, 4},
  ebl.tensor(labels, 'int32'))
local m = ebl.model(ebl.models.mlp{sizes = {16, 32, 3}}, {energy = 'pc'})
ebl.train(m, ds, {epochs = 2, batch = 8, steps = 40, state_lr = 0.1,
  lr = 0.01, test = ds, test_subset = 64})
'''
EPOCH = re.compile(r'epoch (\d): train loss [\d.]+ acc [\d.]+, test acc '
                   r'[\d.]+, \d+ samples/s \([\d.]+ s\)')


@case
def a_terminal_gets_a_progress_bar_redrawn_in_place():
    child = pexpect.spawn(EBL, ['-e', TRAIN], cwd=ROOT, encoding='utf-8',
                          timeout=60, dimensions=(40, 160))
    child.expect(pexpect.EOF)
    text = child.before
    bars = re.findall(r'\repoch 1/2 \[[#.]{20}\] (\d+)/256 loss [\d.]+ '
                      r'energy [\d.e+-]+ acc [\d.]+ \d+ samples/s '
                      r'\d+:\d\d left\x1b\[K', text)
    assert len(bars) >= 2, repr(text[:400])
    assert bars[-1] == '256', bars
    lines = text.replace('\r\n', '\n').split('\n')
    finals = [line for line in lines if EPOCH.search(line)]
    assert len(finals) == 2, repr(text[-400:])
    assert all(line.count('\n') == 0 for line in finals)


@case
def a_pipe_gets_one_line_per_epoch():
    rc, out, err = run('-e', TRAIN)
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 2, out
    assert [EPOCH.fullmatch(line).group(1) for line in lines] == ['1', '2']
    assert '\r' not in out


done()
