-- Shared by the scenario scripts (loaded with dofile): gives every wrk thread an id,
-- tallies response statuses per thread, and reports them from done().
--
-- Each wrk thread runs its own Lua state, and done() runs in the main state, which
-- can only read a thread's *global scalars* (thread:get). So each thread keeps one
-- global counter per status (status_201, ...) plus the list of codes it has seen,
-- and the first body of each unexpected status (sample_409, ...) for diagnosis.
-- A script that numbers its requests keeps the next number in the global bench_next;
-- done() reports the highest, so the runner can start the next run after it.
-- With BENCH_HISTOGRAM=1, done() also prints the latency histogram (microseconds and
-- counts), so the runner can merge runs into exact percentiles.

local threads = {}
local next_thread_id = 0

function setup(thread)
  thread:set("thread_id", next_thread_id)
  next_thread_id = next_thread_id + 1
  table.insert(threads, thread)
end

seen_codes = ""

function response(status, headers, body)
  local key = "status_" .. status
  local count = _G[key]
  if count == nil then
    count = 0
    seen_codes = seen_codes .. status .. ","
    if status >= 300 and body ~= nil then
      _G["sample_" .. status] = string.sub(string.gsub(body, "%s+", " "), 1, 300)
    end
  end
  _G[key] = count + 1
end

function done(summary, latency, requests)
  local totals, samples = {}, {}
  for _, thread in ipairs(threads) do
    for code in string.gmatch(thread:get("seen_codes") or "", "(%d+),") do
      totals[code] = (totals[code] or 0) + (thread:get("status_" .. code) or 0)
      samples[code] = samples[code] or thread:get("sample_" .. code)
    end
  end
  for code, count in pairs(totals) do
    io.write(string.format("BENCH_STATUS %s %d\n", code, count))
  end
  for code, body in pairs(samples) do
    io.write(string.format("BENCH_SAMPLE %s %s\n", code, body))
  end
  local next_index = nil
  for _, thread in ipairs(threads) do
    local value = thread:get("bench_next")
    if value ~= nil and (next_index == nil or value > next_index) then
      next_index = value
    end
  end
  if next_index ~= nil then
    io.write(string.format("BENCH_NEXT %d\n", next_index))
  end
  bench_histogram(latency)
end

-- latency(i) scans the whole histogram, so the dump is quadratic: only for short runs.
local HISTOGRAM_LIMIT = 20000

function bench_histogram(latency)
  if os.getenv("BENCH_HISTOGRAM") ~= "1" or #latency > HISTOGRAM_LIMIT then
    return
  end
  local parts = {}
  for i = 1, #latency do
    local value, count = latency(i)
    table.insert(parts, string.format("%d:%d", value, count))
  end
  io.write("BENCH_HISTOGRAM " .. table.concat(parts, ",") .. "\n")
end

-- Helpers for the scenario scripts.
function bench_env(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    error("environment variable " .. name .. " is not set (run through bench/run.py)")
  end
  return value
end

function bench_split(text)
  local items = {}
  for item in string.gmatch(text, "[^,]+") do
    table.insert(items, item)
  end
  return items
end

-- The API token comes from the environment, never argv (argv is visible in ps).
function bench_auth_headers()
  wrk.headers["Authorization"] = "Token " .. bench_env("BENCH_TOKEN")
  wrk.headers["Accept"] = "application/json"
end
