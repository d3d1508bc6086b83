-- (d) GET /api/v1/appointments/?page_size=50&start_after=<t>&start_before=<t + 30 days>:
-- the first page of a month of the company's appointments (ordered by start), the
-- window moving over the seeded year from request to request.
-- Env: BENCH_TOKEN, BENCH_PAGE_SIZE, BENCH_WINDOWS ("<after>/<before>" UTC instants,
-- comma-separated).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local windows, prefix, counter

function init(args)
  bench_auth_headers()
  windows = bench_split(bench_env("BENCH_WINDOWS"))
  prefix = "/api/v1/appointments/?page_size=" .. bench_env("BENCH_PAGE_SIZE")
  counter = thread_id * 101 -- threads start in different months
end

function request()
  counter = counter + 1
  local after, before = string.match(windows[(counter % #windows) + 1], "([^/]+)/([^/]+)")
  return wrk.format("GET", prefix .. "&start_after=" .. after .. "&start_before=" .. before)
end
