-- (b) GET /api/v1/availability/?service=<id>&date=<day>, days spread over the next 30.
-- Env: BENCH_TOKEN, BENCH_SERVICE_ID, BENCH_DATES (comma-separated YYYY-MM-DD).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local dates, prefix, counter

function init(args)
  bench_auth_headers()
  dates = bench_split(bench_env("BENCH_DATES"))
  prefix = "/api/v1/availability/?service=" .. bench_env("BENCH_SERVICE_ID") .. "&date="
  counter = thread_id * 7 -- threads start on different days
end

function request()
  counter = counter + 1
  return wrk.format("GET", prefix .. dates[(counter % #dates) + 1])
end
