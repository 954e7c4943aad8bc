"""The Lua scripts that keep the emulator's state in Redis atomic across processes (SPEC 1.3, 2.5).

Each script runs whole inside Redis, as if under one lock shared by every worker and replica: the
throttle reads the clock and counts in one script, a fault is taken (and spent) in one, a bounded
log appends and drops its oldest in one. Real time is Redis' `TIME`, one clock for all machines.
Numbers go back and forth as strings ("%.17g" keeps every bit of a double).
"""

from __future__ import annotations

# -- shared pieces ----------------------------------------------------------------------------

_NUMBERS = r"""
local function fmt(x) return string.format('%.17g', x) end
local function int(x) return string.format('%d', x) end
local function num(v) return tonumber(v) or 0 end
"""

# The emulator's clock (clock.py's semantics): anchor + (real - real_anchor) * rate, within
# ±bound, never below the latest reading since it was last set. An absent clock is real time.
_CLOCK = r"""
local function real_time()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function clamp(x, bound)
  if x > bound then return bound end
  if x < -bound then return -bound end
  return x
end

local function clock_set(key, when, rate, bound)
  redis.call('HSET', key, 'anchor', fmt(when), 'real_anchor', fmt(real_time()),
             'rate', fmt(rate), 'latest', fmt(clamp(when, bound)))
  return clamp(when, bound), rate
end

local function clock_now(key, default_rate, bound)
  local s = redis.call('HMGET', key, 'anchor', 'real_anchor', 'rate', 'latest')
  if not s[1] then return clock_set(key, real_time(), default_rate, bound) end
  local rate = tonumber(s[3])
  local running = clamp(tonumber(s[1]) + (real_time() - tonumber(s[2])) * rate, bound)
  local latest = tonumber(s[4])
  if running > latest then
    latest = running
    redis.call('HSET', key, 'latest', fmt(latest))
  end
  return latest, rate
end
"""

# KEYS: clock. ARGV: default rate, bound. → {now, rate}
CLOCK_NOW = (
    _NUMBERS
    + _CLOCK
    + r"""
local now, rate = clock_now(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
return {fmt(now), fmt(rate)}
"""
)

# KEYS: clock. ARGV: when, rate, bound.
CLOCK_SET = (
    _NUMBERS
    + _CLOCK
    + r"""
clock_set(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
return 1
"""
)

# KEYS: clock. ARGV: seconds, rate, default rate, bound. Read and move in one step.
CLOCK_ADVANCE = (
    _NUMBERS
    + _CLOCK
    + r"""
local bound = tonumber(ARGV[4])
local now = clock_now(KEYS[1], tonumber(ARGV[3]), bound)
clock_set(KEYS[1], now + tonumber(ARGV[1]), tonumber(ARGV[2]), bound)
return 1
"""
)

# -- throttle -----------------------------------------------------------------------------------

# One key's record (throttle.py's `_Record`): per tier "limit/period", its recent windows as
# index,count pairs, the window touched most recently last: "20/5=i,c,i,c;40/25=i,c".
_RECORD = r"""
local function decode_record(text)
  local record = {names = {}, windows = {}}
  if not text then return record end
  for name, pairs in string.gmatch(text, '([^;=]+)=([^;]*)') do
    local windows = {}
    for n in string.gmatch(pairs, '[^,]+') do windows[#windows + 1] = tonumber(n) end
    record.names[#record.names + 1] = name
    record.windows[name] = windows
  end
  return record
end

local function encode_record(record)
  local parts = {}
  for _, name in ipairs(record.names) do
    local numbers = {}
    for i, n in ipairs(record.windows[name]) do numbers[i] = int(n) end
    parts[#parts + 1] = name .. '=' .. table.concat(numbers, ',')
  end
  return table.concat(parts, ';')
end

-- One more request in window `index` of tier `name`; the count it makes there.
local function count_in(record, name, index, kept_windows)
  local windows = record.windows[name]
  if not windows then
    windows = {}
    record.names[#record.names + 1] = name
  end
  local n = #windows
  if n >= 2 and windows[n - 1] == index then  -- the usual case: the window touched last
    windows[n] = windows[n] + 1
    record.windows[name] = windows
    return windows[n]
  end
  local count, others = 1, {}
  for at = 1, n, 2 do
    if windows[at] == index then
      count = windows[at + 1] + 1
    else
      others[#others + 1] = windows[at]
      others[#others + 1] = windows[at + 1]
    end
  end
  local fresh = {}  -- the least recently touched is let go first
  for at = math.max(#others - 2 * (kept_windows - 1), 0) + 1, #others do
    fresh[#fresh + 1] = others[at]
  end
  fresh[#fresh + 1] = index
  fresh[#fresh + 1] = count
  record.windows[name] = fresh
  return count
end
"""

# KEYS: clock, records (hash bucket → record), lru (zset bucket → last counted), sequence.
# ARGV: default rate, bound, bucket, max_keys, windows kept, then limit, period per tier.
# → {now, count per tier counted, up to the first exceeded}
THROTTLE_HIT = (
    _NUMBERS
    + _CLOCK
    + _RECORD
    + r"""
local now = clock_now(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
local bucket, max_keys, kept_windows = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local held = redis.call('HGET', KEYS[2], bucket)
local record = decode_record(held)
local out = {fmt(now)}
for at = 6, #ARGV, 2 do
  local limit, period = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
  local count = count_in(record, ARGV[at] .. '/' .. ARGV[at + 1], math.floor(now / period),
                         kept_windows)
  out[#out + 1] = count
  if count > limit then break end
end
redis.call('HSET', KEYS[2], bucket, encode_record(record))
redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[4]), bucket)
if not held and redis.call('ZCARD', KEYS[3]) > max_keys then
  local oldest = redis.call('ZPOPMIN', KEYS[3])  -- the key counted longest ago is forgotten
  redis.call('HDEL', KEYS[2], oldest[1])
end
return out
"""
)

# -- bounded logs (bounded.py's semantics) -------------------------------------------------------

# A log is four keys: meta (hash: last id given, count, bytes, dropped, and `start`, how many
# items of the oldest batch were dropped), ids (zset: each batch's first id), items (hash: first
# id → the batch as JSON), sizes (hash: first id → "items bytes"). Bytes are apportioned evenly
# across a batch's items, as in memory.
_LOG = r"""
local meta, ids, items, sizes = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

local function size_of(id)
  local s = redis.call('HGET', sizes, id)
  if not s then return nil end
  local n, nbytes = string.match(s, '(%d+) (%d+)')
  return tonumber(n), tonumber(nbytes)
end

local function kept_bytes(nbytes, n, start)
  return math.floor(nbytes * (n - start) / math.max(n, 1))
end

local function oldest() return redis.call('ZRANGE', ids, 0, 0)[1] end

local function trim(max_items, max_bytes)
  local m = redis.call('HMGET', meta, 'count', 'bytes', 'dropped', 'start')
  local count, bytes, dropped, start = num(m[1]), num(m[2]), num(m[3]), num(m[4])
  while count > max_items or bytes > max_bytes do
    local id = oldest()
    if not id then break end
    local n, nbytes = size_of(id)
    local per_item = nbytes / math.max(n, 1)
    local excess, for_bytes = bytes - max_bytes, 0
    if excess > 0 and per_item > 0 then for_bytes = math.ceil(excess / per_item) end
    local drop = math.min(math.max(count - max_items, for_bytes, 1), n - start)
    local before = kept_bytes(nbytes, n, start)
    start = start + drop
    count, dropped = count - drop, dropped + drop
    bytes = bytes - (before - kept_bytes(nbytes, n, start))
    if start >= n then
      redis.call('ZREM', ids, id)
      redis.call('HDEL', items, id)
      redis.call('HDEL', sizes, id)
      start = 0
    end
  end
  redis.call('HSET', meta, 'count', int(count), 'bytes', int(bytes), 'dropped', int(dropped),
             'start', int(start))
end
"""

# ARGV: batch JSON, items in it, bytes, max items, max bytes. → the batch's first id
LOG_APPEND = (
    _NUMBERS
    + _LOG
    + r"""
local n, nbytes = tonumber(ARGV[2]), tonumber(ARGV[3])
local first = redis.call('HINCRBY', meta, 'next', n) - n + 1
if n > 0 then
  redis.call('ZADD', ids, first, first)
  redis.call('HSET', items, first, ARGV[1])
  redis.call('HSET', sizes, first, int(n) .. ' ' .. int(nbytes))
  redis.call('HINCRBY', meta, 'count', n)
  redis.call('HINCRBY', meta, 'bytes', nbytes)
  trim(tonumber(ARGV[4]), tonumber(ARGV[5]))
end
return first
"""
)

# ARGV: first id, bytes, the batch's JSON now, max items, max bytes. A batch dropped already
# stays dropped: nothing of it is held any more.
LOG_REPLACE = (
    _NUMBERS
    + _LOG
    + r"""
local id = ARGV[1]
local n, nbytes = size_of(id)
if not n then return 0 end
local start = 0
if oldest() == id then start = num(redis.call('HGET', meta, 'start')) end
local before = kept_bytes(nbytes, n, start)
redis.call('HSET', sizes, id, int(n) .. ' ' .. ARGV[2])
redis.call('HSET', items, id, ARGV[3])
redis.call('HINCRBY', meta, 'bytes', kept_bytes(tonumber(ARGV[2]), n, start) - before)
trim(tonumber(ARGV[4]), tonumber(ARGV[5]))
return 1
"""
)

# ARGV: since, batches wanted. → {dropped, start, oldest id, then id, items, JSON per batch}: the
# batches holding an item with an id above `since`, oldest first, as one consistent reading.
LOG_READ = (
    _NUMBERS
    + _LOG
    + r"""
local since, wanted = tonumber(ARGV[1]), tonumber(ARGV[2])
local m = redis.call('HMGET', meta, 'dropped', 'start')
local out = {int(num(m[1])), int(num(m[2])), oldest() or '0'}
local chosen = {}
local before = redis.call('ZREVRANGEBYSCORE', ids, int(since + 1), '-inf', 'LIMIT', 0, 1)[1]
if before then
  local n = size_of(before)
  if tonumber(before) + n - 1 > since then chosen[1] = before end
end
local after = redis.call('ZRANGEBYSCORE', ids, '(' .. int(since + 1), '+inf', 'LIMIT', 0, wanted)
for _, id in ipairs(after) do chosen[#chosen + 1] = id end
for _, id in ipairs(chosen) do
  out[#out + 1] = id
  out[#out + 1] = int(size_of(id))
  out[#out + 1] = redis.call('HGET', items, id)
end
return out
"""
)

# KEYS: the journal's four (meta, ids, items, sizes), clock, faults, registry version.
# ARGV: default rate, bound, entry JSON, bytes, max items, max bytes.
# → {id, now, registry version, live faults}: what a request needs of Redis before its view, in
# one round trip. The entry is stamped with the clock's reading: its `"time":null` becomes now.
BEGIN_REQUEST = (
    _NUMBERS
    + _CLOCK
    + _LOG
    + r"""
local now = clock_now(KEYS[5], tonumber(ARGV[1]), tonumber(ARGV[2]))
local entry = ARGV[3]
local from, to = string.find(entry, '"time":null', 1, true)
if from then
  entry = string.sub(entry, 1, from - 1) .. '"time":' .. fmt(now) .. string.sub(entry, to + 1)
end
local nbytes = tonumber(ARGV[4])
local id = redis.call('HINCRBY', meta, 'next', 1)
redis.call('ZADD', ids, id, id)
redis.call('HSET', items, id, entry)
redis.call('HSET', sizes, id, '1 ' .. int(nbytes))
redis.call('HINCRBY', meta, 'count', 1)
redis.call('HINCRBY', meta, 'bytes', nbytes)
trim(tonumber(ARGV[5]), tonumber(ARGV[6]))
return {id, fmt(now), redis.call('GET', KEYS[7]) or '', redis.call('HLEN', KEYS[6])}
"""
)

# -- faults (faults.py's semantics) -----------------------------------------------------------

# KEYS: faults (hash id → spec JSON), fired (hash id → times fired), meta (next id, epoch).
# ARGV: path, token, has token ("1"/"0"), campaign id, has campaign id.
# → false, or {id, spec JSON, fired, epoch}: the first live fault matching, used up by one.
FAULT_TAKE = r"""
local faults, fired_key, meta = KEYS[1], KEYS[2], KEYS[3]
local path, token, has_token = ARGV[1], ARGV[2], ARGV[3] == '1'
local campaign, has_campaign = ARGV[4], ARGV[5] == '1'

local function holds(wanted, given, has)
  return wanted == nil or (has and wanted == given)
end

local function matches(m)
  local prefix = m.path or ''
  return string.sub(path, 1, #prefix) == prefix and holds(m.token, token, has_token)
    and holds(m.campaign_id, campaign, has_campaign)
end

local order = {}
for _, id in ipairs(redis.call('HKEYS', faults)) do order[#order + 1] = tonumber(id) end
table.sort(order)
for _, id in ipairs(order) do
  local text = redis.call('HGET', faults, tostring(id))
  local spec = cjson.decode(text)
  if matches(spec.match or {}) then
    local fired = redis.call('HINCRBY', fired_key, tostring(id), 1)
    if type(spec.times) == 'number' and fired >= spec.times then
      redis.call('HDEL', faults, tostring(id))
      redis.call('HDEL', fired_key, tostring(id))
    end
    return {tostring(id), text, fired, redis.call('HGET', meta, 'epoch') or '0'}
  end
end
return false
"""

# KEYS: faults, meta. ARGV: spec JSON. → the new fault's id
FAULT_ADD = r"""
local id = redis.call('HINCRBY', KEYS[2], 'next', 1)
redis.call('HSET', KEYS[1], id, ARGV[1])
return id
"""

# -- the outbox (outbox.py's semantics, redis_outbox.py) ------------------------------------------

# An outbox is ten keys: meta (hash: count, bytes, dropped, and a count per status), ids (zset:
# each batch's first id), batches (hash: first id → the MailBatch as stored), sizes (hash: first
# id → "messages bytes delivers stamp start": `start` counts its messages dropped already, the
# stamp tells one batch from another of the same id after Redis was emptied), unsent (hash: first
# id → its messages queued or sending), turn (zset: campaigns with work waiting, in turn order:
# round robin), cursor (hash: first id → the next index never claimed), states (hash: message id →
# JSON {s: status, a: attempts, c: claimant, f: first id, k: campaign, t: sent_at, e: last_error}),
# leases (zset: message id → when its lease ends). Each campaign in turn has two more: `turn`:fresh:
# <campaign> (zset: its batches with messages never claimed) and `turn`:due:<campaign> (zset:
# message id → when its retry is due). A message with no state is captured (a batch for the outbox
# provider) or queued (never claimed). Times are Redis' TIME.
_OUTBOX = r"""
local meta, ids, batches, sizes = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local unsent, turn, cursor, states = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local leases = KEYS[9]

local function lane(part, campaign)  -- a campaign's fresh batches or due retries
  return turn .. ':' .. part .. ':' .. campaign
end

local function in_turn(campaign)  -- last in turn, unless in turn already
  redis.call('ZADD', turn, 'NX', redis.call('HINCRBY', meta, 'turns', 1), campaign)
end

local function size_of(id)  -- messages, bytes, delivers, stamp, start
  local s = redis.call('HGET', sizes, id)
  if not s then return nil end
  local n, nbytes, delivers, stamp, start = string.match(s, '(%d+) (%d+) (%d) (%w+) (%d+)')
  return tonumber(n), tonumber(nbytes), delivers == '1', stamp, tonumber(start)
end

local function set_start(id, start)
  local n, nbytes, delivers, stamp = size_of(id)
  local flag = delivers and '1' or '0'
  redis.call('HSET', sizes, id, int(n) .. ' ' .. int(nbytes) .. ' ' .. flag .. ' ' .. stamp ..
             ' ' .. int(start))
end

local function kept_bytes(nbytes, n, start)
  return math.floor(nbytes * (n - start) / math.max(n, 1))
end

local function state_of(mid)
  local text = redis.call('HGET', states, mid)
  if not text then return nil end
  return cjson.decode(text)
end

-- Messages `from` to `to` - 1 of batch `id` leave the counts by status (and their states go).
local function forget(id, from, to, delivers)
  if not delivers then
    redis.call('HINCRBY', meta, 'captured', from - to)
    return
  end
  local gone = {}  -- status → how many: one HINCRBY each
  for index = from, to - 1 do
    local mid = int(tonumber(id) + index)
    local state = state_of(mid)
    local status = state and state.s or 'queued'
    gone[status] = (gone[status] or 0) + 1
    redis.call('HDEL', states, mid)
  end
  for status, n in pairs(gone) do redis.call('HINCRBY', meta, status, -n) end
end

local function drop_batch(id)
  redis.call('ZREM', ids, id)  -- never fresh: a batch with a message unsent is not dropped
  redis.call('HDEL', batches, id)
  redis.call('HDEL', sizes, id)
  redis.call('HDEL', unsent, id)
  redis.call('HDEL', cursor, id)
end

-- Over a bound: the oldest batch's messages go, counted, as bounded.oldest_to_drop says (part of
-- the batch when that is enough), but none while one of them is unsent.
local function trim(max_messages, max_bytes)
  local m = redis.call('HMGET', meta, 'count', 'bytes', 'dropped')
  local count, bytes, dropped = num(m[1]), num(m[2]), num(m[3])
  while count > max_messages or bytes > max_bytes do
    local id = redis.call('ZRANGE', ids, 0, 0)[1]
    if not id or num(redis.call('HGET', unsent, id)) > 0 then break end
    local n, nbytes, delivers, _, start = size_of(id)
    local per_message = nbytes / math.max(n, 1)
    local excess, for_bytes = bytes - max_bytes, 0
    if excess > 0 and per_message > 0 then for_bytes = math.ceil(excess / per_message) end
    local drop = math.min(math.max(count - max_messages, for_bytes, 1), n - start)
    forget(id, start, start + drop, delivers)
    count, dropped = count - drop, dropped + drop
    bytes = bytes - (kept_bytes(nbytes, n, start) - kept_bytes(nbytes, n, start + drop))
    if start + drop >= n then drop_batch(id) else set_start(id, start + drop) end
  end
  redis.call('HSET', meta, 'count', int(count), 'bytes', int(bytes), 'dropped', int(dropped))
end

-- One batch's fields as the reads answer them: id, messages, start, delivers, stamp.
local function batch_row(out, id)
  local n, _, delivers, stamp, start = size_of(id)
  out[#out + 1] = id
  out[#out + 1] = int(n)
  out[#out + 1] = int(start)
  out[#out + 1] = delivers and '1' or '0'
  out[#out + 1] = stamp
end

-- The batch holding message `mid` from its `start` on, or nil.
local function batch_holding(mid)
  local id = redis.call('ZREVRANGEBYSCORE', ids, mid, '-inf', 'LIMIT', 0, 1)[1]
  if not id then return nil end
  local n, _, _, _, start = size_of(id)
  local index = tonumber(mid) - tonumber(id)
  if index >= n or index < start then return nil end
  return id
end
"""

# ARGV: first id, messages, bytes, delivers ("1"/"0"), stamp, stored batch, max messages, max
# bytes, campaign. Adding a batch held already (same first id) changes nothing. → 1
OUTBOX_ADD = (
    _NUMBERS
    + _OUTBOX
    + r"""
local id, n, nbytes, delivers = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'
if n == 0 or redis.call('HEXISTS', sizes, id) == 1 then return 0 end
redis.call('ZADD', ids, id, id)
redis.call('HSET', batches, id, ARGV[6])
redis.call('HSET', sizes, id, int(n) .. ' ' .. int(nbytes) .. ' ' .. ARGV[4] .. ' ' .. ARGV[5] ..
           ' 0')
if delivers then
  redis.call('HSET', unsent, id, n)
  redis.call('ZADD', lane('fresh', ARGV[9]), id, id)
  in_turn(ARGV[9])
  redis.call('HSET', cursor, id, 0)
  redis.call('HINCRBY', meta, 'queued', n)
else
  redis.call('HINCRBY', meta, 'captured', n)
end
redis.call('HINCRBY', meta, 'count', n)
redis.call('HINCRBY', meta, 'bytes', nbytes)
trim(tonumber(ARGV[7]), tonumber(ARGV[8]))
return 1
"""
)

# ARGV: claimant, lease seconds, then the campaigns passed over (this claimant's senders at their
# share). → false, or {message id, first id, stamp, attempts, last error or false, campaign}: a
# message whose lease ran out (its sender died: taken again), else the next campaign in turn's
# retry now due, else its next message never claimed; now `sending`, leased; that campaign last.
OUTBOX_CLAIM = (
    _NUMBERS
    + _CLOCK
    + _OUTBOX
    + r"""
local now = real_time()
local full = {}
for at = 3, #ARGV do full[ARGV[at]] = true end

local function take(mid, first, campaign)
  local state = state_of(mid) or {s = 'queued', a = 0, f = first, k = campaign}
  redis.call('HINCRBY', meta, state.s, -1)
  redis.call('HINCRBY', meta, 'sending', 1)
  state.s, state.a, state.c = 'sending', state.a + 1, ARGV[1]
  redis.call('HSET', states, mid, cjson.encode(state))
  redis.call('ZADD', leases, fmt(now + tonumber(ARGV[2])), mid)
  local _, _, _, stamp = size_of(state.f)
  return {mid, state.f, stamp, state.a, state.e or false, state.k or ''}
end

local function lapsed()  -- as many leases as senders: a few read
  for _, mid in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', fmt(now), 'LIMIT', 0, 64)) do
    local state = state_of(mid)
    if not state then redis.call('ZREM', leases, mid)
    elseif not full[state.k] then return mid end
  end
end

local function next_of(campaign)  -- its retry due, else its next message never claimed
  local due = lane('due', campaign)
  local retry = redis.call('ZRANGEBYSCORE', due, '-inf', fmt(now), 'LIMIT', 0, 1)[1]
  if retry then
    redis.call('ZREM', due, retry)
    return retry
  end
  local fresh = lane('fresh', campaign)
  local id = redis.call('ZRANGE', fresh, 0, 0)[1]
  if not id then return nil end
  local index = redis.call('HINCRBY', cursor, id, 1) - 1
  if index + 1 >= size_of(id) then
    redis.call('ZREM', fresh, id)
    redis.call('HDEL', cursor, id)
  end
  return int(tonumber(id) + index), id
end

local mid = lapsed()
if mid then return take(mid) end
for _, campaign in ipairs(redis.call('ZRANGE', turn, 0, -1)) do
  if not full[campaign] then
    local found, first = next_of(campaign)
    if found then
      redis.call('ZADD', turn, redis.call('HINCRBY', meta, 'turns', 1), campaign)
      return take(found, first, campaign)
    end
    if redis.call('EXISTS', lane('due', campaign), lane('fresh', campaign)) == 0 then
      redis.call('ZREM', turn, campaign)
    end
  end
end
return false
"""
)

# ARGV: message id, claimant, attempts, status (sent, failed or queued), sent_at, last error,
# retry in (seconds), max messages, max bytes. Settles only the claim it names: a claim whose
# lease was lost to another claimant (or reset) is ignored. → 1 settled, 0 ignored
OUTBOX_SETTLE = (
    _NUMBERS
    + _CLOCK
    + _OUTBOX
    + r"""
local mid, status = ARGV[1], ARGV[4]
local state = state_of(mid)
if not state or state.s ~= 'sending' or state.c ~= ARGV[2] or state.a ~= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZREM', leases, mid)
redis.call('HINCRBY', meta, 'sending', -1)
redis.call('HINCRBY', meta, status, 1)
state.s, state.c = status, nil
if status == 'sent' then state.t = ARGV[5] else state.e = ARGV[6] end
redis.call('HSET', states, mid, cjson.encode(state))
if status == 'queued' then
  redis.call('ZADD', lane('due', state.k or ''), fmt(real_time() + tonumber(ARGV[7])), mid)
  in_turn(state.k or '')
else
  redis.call('HINCRBY', unsent, state.f, -1)
  trim(tonumber(ARGV[8]), tonumber(ARGV[9]))
end
return 1
"""
)

# ARGV: since, batches wanted. → {dropped, then id, messages, start, delivers, stamp per batch}:
# the batches holding a message with an id above `since`, oldest first, as one reading.
OUTBOX_READ = (
    _NUMBERS
    + _OUTBOX
    + r"""
local since, wanted = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {int(num(redis.call('HGET', meta, 'dropped')))}
local before = redis.call('ZREVRANGEBYSCORE', ids, int(since + 1), '-inf', 'LIMIT', 0, 1)[1]
if before and tonumber(before) + size_of(before) - 1 > since then
  batch_row(out, before)
  wanted = wanted - 1
end
local after = redis.call('ZRANGEBYSCORE', ids, '(' .. int(since + 1), '+inf', 'LIMIT', 0, wanted)
for _, id in ipairs(after) do batch_row(out, id) end
return out
"""
)

# ARGV: message id. → false, or {id, messages, start, delivers, stamp, state JSON or ""}
OUTBOX_FIND = (
    _NUMBERS
    + _OUTBOX
    + r"""
local id = batch_holding(ARGV[1])
if not id then return false end
local out = {}
batch_row(out, id)
out[#out + 1] = redis.call('HGET', states, ARGV[1]) or ''
return out
"""
)

# Empties the outbox: its keys (KEYS) and each campaign's in turn. → 1
OUTBOX_RESET = (
    _NUMBERS
    + _OUTBOX
    + r"""
for _, campaign in ipairs(redis.call('ZRANGE', turn, 0, -1)) do
  redis.call('DEL', lane('fresh', campaign), lane('due', campaign))
end
redis.call('DEL', unpack(KEYS))
return 1
"""
)
