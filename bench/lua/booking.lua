-- (c) POST /api/v1/appointments/, each request a distinct (staff, slot): no conflicts.
--
-- Slot space: global index i -> day = i // (staff * slots_per_day); within a day the
-- slot index is the slower digit and the staff member the faster one, so consecutive
-- requests go to different staff. Thread k of n takes i = s + k, s + k + n, ... so the
-- threads never meet; s (BENCH_START) is where the previous run stopped (done() prints
-- BENCH_NEXT), so runs against the same database never meet either. The phone number
-- is derived from i, so every booking is a new customer with a distinct (valid German
-- mobile) number.
--
-- Env: BENCH_TOKEN, BENCH_SERVICE_ID, BENCH_STAFF (ids, comma-separated),
-- BENCH_DAYS ("<epoch of local 00:00>/<offset seconds>/<+HH:MM>", comma-separated;
-- days with a DST change are left out), BENCH_SLOTS_PER_DAY, BENCH_SLOT_SECONDS,
-- BENCH_THREADS, BENCH_START (optional, 0).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local service, staff, days, slots_per_day, slot_seconds, step, index

local function parse_days(text)
  local parsed = {}
  for epoch, offset_s, offset in string.gmatch(text, "(%d+)/(-?%d+)/([^,]+)") do
    table.insert(parsed, { epoch = tonumber(epoch), offset_s = tonumber(offset_s), offset = offset })
  end
  return parsed
end

function init(args)
  bench_auth_headers()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  service = bench_env("BENCH_SERVICE_ID")
  staff = bench_split(bench_env("BENCH_STAFF"))
  days = parse_days(bench_env("BENCH_DAYS"))
  slots_per_day = tonumber(bench_env("BENCH_SLOTS_PER_DAY"))
  slot_seconds = tonumber(bench_env("BENCH_SLOT_SECONDS"))
  step = tonumber(bench_env("BENCH_THREADS"))
  index = tonumber(os.getenv("BENCH_START") or "0") + thread_id
  bench_next = index
end

local function slot_start(i)
  local per_day = #staff * slots_per_day
  local day = days[(math.floor(i / per_day) % #days) + 1]
  local within = i % per_day
  local epoch = day.epoch + math.floor(within / #staff) * slot_seconds
  local wall = os.date("!%Y-%m-%dT%H:%M:%S", epoch + day.offset_s)
  return staff[(within % #staff) + 1], wall .. day.offset
end

function request()
  local i = index
  index = index + step
  bench_next = index -- a global: done() reads it (see common.lua)
  local staff_id, start = slot_start(i)
  local body = string.format(
    '{"service": %s, "staff": %s, "start": "%s", '
      .. '"customer": {"name": "Bench Caller", "phone": "+49151%08d"}}',
    service, staff_id, start, i
  )
  return wrk.format(nil, nil, nil, body)
end
