-- One circuit breaker, kept in Redis and shared by every process.
--
-- KEYS[1]  hash   state, forced, open_until, opened_at, changed_at, successes,
--                 and a ring of window buckets: e<i> (bucket epoch), c<i> calls,
--                 f<i> failures, s<i> slow calls.
-- KEYS[2]  string the half-open probe lease: holds the probe's token, expires by itself.
--
-- ARGV[1] is the operation; the clock is Redis's own (TIME), so every process agrees.
--   acquire  token lease_ms
--            -> {decision, state, retry_at_ms, from_state}
--               decision: allow | probe | reject
--   record   outcome token bucket_ms buckets min_calls failure_rate slow_rate open_ms successes_needed
--            -> {state, from_state, calls, failures, slow}
--   force    mode (open | closed | reset)  -> {state, from_state}
--   status   bucket_ms buckets -> {state, forced, open_until, changed_at, calls, failures, slow, probe_ttl_ms}
--
-- Every transition returns the state it left in from_state ('' when nothing changed),
-- so the caller can log and count it exactly once.

local h, lease = KEYS[1], KEYS[2]
local op = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function state_of()
  return redis.call('HGET', h, 'state') or 'closed'
end

-- The ring's fields in order: e0 c0 f0 s0 e1 c1 f1 s1 ...
local function ring_fields(buckets)
  local fields = {}
  for i = 0, buckets - 1 do
    fields[#fields + 1] = 'e' .. i
    fields[#fields + 1] = 'c' .. i
    fields[#fields + 1] = 'f' .. i
    fields[#fields + 1] = 's' .. i
  end
  return fields
end

local function clear_window(buckets)
  redis.call('HDEL', h, unpack(ring_fields(buckets)))
end

local function window(bucket_ms, buckets)
  local epoch = math.floor(now / bucket_ms)
  local v = redis.call('HMGET', h, unpack(ring_fields(buckets)))
  local calls, failures, slow = 0, 0, 0
  for i = 0, buckets - 1 do
    local e = tonumber(v[4 * i + 1])
    if e and e > epoch - buckets then
      calls = calls + (tonumber(v[4 * i + 2]) or 0)
      failures = failures + (tonumber(v[4 * i + 3]) or 0)
      slow = slow + (tonumber(v[4 * i + 4]) or 0)
    end
  end
  return calls, failures, slow
end

local function open(open_ms)
  redis.call('HSET', h, 'state', 'open', 'opened_at', now, 'open_until', now + open_ms,
    'changed_at', now, 'successes', 0)
  redis.call('DEL', lease)
end

if op == 'acquire' then
  local token, lease_ms = ARGV[2], ARGV[3]
  local v = redis.call('HMGET', h, 'forced', 'state', 'open_until')
  local forced, state = v[1], v[2] or 'closed'
  if forced == 'open' then return {'reject', 'forced_open', 0, ''} end
  if forced == 'closed' or state == 'closed' then return {'allow', forced and 'forced_closed' or 'closed', 0, ''} end
  local from = ''
  if state == 'open' then
    local open_until = tonumber(v[3]) or 0
    if now < open_until then return {'reject', 'open', open_until, ''} end
    redis.call('HSET', h, 'state', 'half_open', 'successes', 0, 'changed_at', now)
    from = 'open'
  end
  if redis.call('SET', lease, token, 'NX', 'PX', lease_ms) then
    return {'probe', 'half_open', 0, from}
  end
  return {'reject', 'half_open', now + math.max(redis.call('PTTL', lease), 0), from}
end

if op == 'record' then
  local outcome, token = ARGV[2], ARGV[3]
  local bucket_ms, buckets = tonumber(ARGV[4]), tonumber(ARGV[5])
  local min_calls, failure_rate, slow_rate = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
  local open_ms, needed = tonumber(ARGV[9]), tonumber(ARGV[10])
  local v = redis.call('HMGET', h, 'forced', 'state')
  local state = v[2] or 'closed'
  if v[1] then return {state, '', 0, 0, 0} end
  if state == 'open' then return {'open', '', 0, 0, 0} end  -- a call admitted before it opened
  if state == 'half_open' then
    if token == '' or redis.call('GET', lease) ~= token then return {'half_open', '', 0, 0, 0} end
    if outcome ~= 'success' then
      open(open_ms)
      return {'open', 'half_open', 0, 0, 0}
    end
    redis.call('DEL', lease)
    if redis.call('HINCRBY', h, 'successes', 1) >= needed then
      clear_window(buckets)
      redis.call('HSET', h, 'state', 'closed', 'changed_at', now, 'successes', 0)
      return {'closed', 'half_open', 0, 0, 0}
    end
    return {'half_open', '', 0, 0, 0}
  end
  local epoch = math.floor(now / bucket_ms)
  local i = epoch % buckets
  if tonumber(redis.call('HGET', h, 'e' .. i)) ~= epoch then
    redis.call('HSET', h, 'e' .. i, epoch, 'c' .. i, 0, 'f' .. i, 0, 's' .. i, 0)
  end
  redis.call('HINCRBY', h, 'c' .. i, 1)
  if outcome == 'failure' then redis.call('HINCRBY', h, 'f' .. i, 1) end
  if outcome == 'slow' then redis.call('HINCRBY', h, 's' .. i, 1) end
  local calls, failures, slow = window(bucket_ms, buckets)
  if calls >= min_calls and (failures >= failure_rate * calls or slow >= slow_rate * calls) then
    clear_window(buckets)
    open(open_ms)
    return {'open', 'closed', calls, failures, slow}
  end
  return {'closed', '', calls, failures, slow}
end

if op == 'force' then
  local mode = ARGV[2]
  local v = redis.call('HMGET', h, 'forced', 'state')
  local before = v[1] and ('forced_' .. v[1]) or (v[2] or 'closed')
  if mode == 'reset' then
    redis.call('DEL', h, lease)
    return {'closed', before}
  end
  redis.call('HSET', h, 'forced', mode, 'changed_at', now)
  redis.call('DEL', lease)
  return {'forced_' .. mode, before}
end

if op == 'status' then
  local bucket_ms, buckets = tonumber(ARGV[2]), tonumber(ARGV[3])
  local v = redis.call('HMGET', h, 'forced', 'state', 'open_until', 'changed_at')
  local calls, failures, slow = window(bucket_ms, buckets)
  return {v[2] or 'closed', v[1] or '', tonumber(v[3]) or 0, tonumber(v[4]) or 0,
    calls, failures, slow, redis.call('PTTL', lease), now}
end

return redis.error_reply('unknown breaker operation ' .. tostring(op))
