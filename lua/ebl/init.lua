-- The Lua half of the ebl module: called once with the table the C
-- openers filled, it adds the parts written in Lua.
return function(ebl)
  local help = require 'ebl.help'
  help.attach(ebl)
  require('ebl.tensor').attach(ebl)
  ebl.nn = require('ebl.nn')(ebl)
  require('ebl.graph')(ebl)
  require('ebl.model')(ebl)
  ebl.optim = require('ebl.optim')(ebl)
  ebl.models = require('ebl.models')(ebl)
  require('ebl.data')(ebl)
  require('ebl.train')(ebl)
  require('ebl.plot')(ebl)
  require('ebl.lessons')(ebl)
  return ebl
end
