-- Warm-up: GET /api/v1/me/ with the token (opens every worker's DB and Redis connections).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function init(args)
  bench_auth_headers()
end
