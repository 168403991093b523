-- The main job of `make run`. Until the trainer lands it is a short
-- demonstration of the host: the banner, help, and timing with the
-- monotonic clock.
local ebl = require 'ebl'

print(('ebl %s: energy-based local learning'):format(ebl.version))
print('help for ebl.sleep:')
ebl.help(ebl.sleep)
local t0 = ebl.clock()
ebl.sleep(0.01)
print(('slept %.3f s (Ctrl-C would stop it)'):format(ebl.clock() - t0))
