-- The Lua half of the ebl module: called once with the table the C
-- openers filled, it adds the parts written in Lua.
return function(ebl)
  local help = require 'ebl.help'
  help.attach(ebl)
  require('ebl.tensor').attach(ebl)
  return ebl
end
