-- Shared by the scenario scripts (loaded with dofile): gives every wrk thread an id,
-- tallies response statuses per thread, and reports them from done().
--
-- Each wrk thread runs its own Lua state, and done() runs in the main state, which
-- can only read a thread's *global scalars* (thread:get). So each thread keeps one
-- global counter per status (status_201, ...) plus the list of codes it has seen,
-- and the first body of each unexpected status (sample_409, ...) for diagnosis.

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
