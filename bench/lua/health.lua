-- (a) GET /health/live: the bare view, the ceiling of the stack.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
