-- (e) POST /webhooks/stripe/<endpoint>/: signed Stripe events, each id used once.
--
-- wrk's Lua has no HMAC, so bench/webhook.py signs the events before the run: one file
-- per wrk thread (BENCH_EVENTS_DIR/thread-<id>.txt), one event a line,
-- "<Stripe-Signature header>\t<body>", signed with a timestamp taken just before the
-- run (Stripe's tolerance: 300 s). Each thread reads its own file a line per request,
-- so no event is sent twice; a thread that runs out starts over (the repeats answer
-- 200 duplicate, and show in the status counts).
-- Runs that share the files (the observability scenario's slices) pass BENCH_START:
-- each thread skips that many lines of its file first, and keeps the next line's
-- number in bench_next, which done() reports (BENCH_NEXT) for the next run.
--
-- Env: BENCH_EVENTS_DIR; optional BENCH_START (0).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local path, file

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  path = bench_env("BENCH_EVENTS_DIR") .. "/thread-" .. thread_id .. ".txt"
  file = assert(io.open(path, "r"))
  bench_next = tonumber(os.getenv("BENCH_START") or "") or 0
  for _ = 1, bench_next do
    if file:read("*l") == nil then
      break
    end
  end
end

function request()
  local line = file:read("*l")
  if line == nil then
    file:close()
    file = assert(io.open(path, "r"))
    line = file:read("*l")
  end
  bench_next = bench_next + 1
  local tab = string.find(line, "\t", 1, true)
  -- wrk.format(nil, nil, headers) would replace wrk.headers, not add to them
  wrk.headers["Stripe-Signature"] = string.sub(line, 1, tab - 1)
  return wrk.format(nil, nil, nil, string.sub(line, tab + 1))
end
