-- Publish runs of messages to channels, atomically and in order per channel: every publish of a flush
-- is one script call on a standalone Redis, and one per shard on a Cluster (a shard's keys carry its
-- hash tag: one slot). A message with an idempotency key whose key is still remembered is not published
-- again: its first position is returned (duplicate). Every other message takes the next offset of its
-- channel, is appended to the channel's history and, when ARGV[4] is 1, announced (shard feed entry);
-- the channel's last offset (and announced top) is written once per run. Replicated publishing passes 0
-- and announces with announce.lua once enough replicas have the messages.
-- Redis work is one history entry and one feed entry per run of up to ARGV[6] messages (run_add), plus
-- GET/SET per message with a key: the offset is counted here and written once per run, because each
-- redis.call costs about as much as the command itself. For the same reason the TTLs are not renewed by
-- every run: a channel's keys get a tenth more than the TTL (PEXPIRE) and are renewed once that tenth
-- has passed (meta field t: when, in ms), so they live at least the TTL after the last publish and at
-- most a tenth longer, and a channel published once per message pays no EXPIREs on most of them.
-- KEYS[3j-2], KEYS[3j-1], KEYS[3j] of the j-th run: sb:{s}:feed its shard's feed (entries as run_flush
-- writes them), sb:{s}:meta:<channel> hash {e = epoch, o = last offset, a = last announced offset,
-- t = when the TTLs were last renewed}, sb:{s}:h:<channel> history stream (entries as run_flush writes them)
-- ARGV[1] history size  ARGV[2] TTL seconds  ARGV[3] feed MAXLEN  ARGV[4] announce (1/0)
-- ARGV[5] idempotency window seconds  ARGV[6] most messages per entry; then per run: channel,
-- idempotency key prefix (sb:{s}:idem:<channel>:), message count n, keyed (1/0), then n pairs:
-- idempotency key ('' for none), payload — or, when no message of the run has a key (keyed 0), the n
-- payloads alone
-- Returns { write stamp, { per run: { epoch, first new offset, { index, offset, epoch } per duplicate } } };
-- the new messages of a run take consecutive offsets from its first new offset, in order; write ids are
-- <stamp>-1, <stamp>-2, … over the whole call.
local size = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local maxlen = ARGV[3]
local announce = ARGV[4] == '1'
local window = tonumber(ARGV[5])
local limit = tonumber(ARGV[6])
local stamp = write_stamp()
-- TTLs in ms: renewed once a tenth of the TTL has passed since the last renewal, set to TTL plus that tenth.
local now_ms = math.floor(tonumber(stamp) / 1000)
local renew_ms = math.floor(ttl * 100)
local ttl_ms = ttl * 1000 + renew_ms
local run = run_new(nil, maxlen, limit)
local written = 0
local replies = {}
local a = 7
for k = 1, #KEYS, 3 do
  local meta, hist = KEYS[k + 1], KEYS[k + 2]
  local announced_to = nil
  if announce then announced_to = KEYS[k] end
  run.feed = announced_to
  local channel, prefix, count, keyed = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3] == '1'
  a = a + 4
  local m = redis.call('HMGET', meta, 'e', 'o', 't')
  local epoch = m[1]
  local offset = 0
  if epoch then offset = tonumber(m[2]) else epoch = ensure_epoch(meta, hist, ttl) end
  -- Renewed when never renewed, a tenth of the TTL ago, or in the future (another master's clock).
  local age = now_ms - (tonumber(m[3]) or 0)
  local renew = not m[3] or age >= renew_ms or age < 0
  local first = offset + 1
  local dups = {}
  if count == 1 and not keyed then
    -- One message without a key (each of many channels published once): no run bookkeeping.
    local payload = ARGV[a]
    a = a + 1
    offset = offset + 1
    written = written + 1
    write_single(hist, size, limit, announced_to, maxlen, channel, epoch, offset, stamp .. '-' .. written, payload)
  else
    -- Keys of this call's new messages: remembered (SET) after the run is written; `seen` catches a key
    -- given twice in one call. Only runs with keys need them.
    local keyed_at, seen = nil, nil
    if keyed then keyed_at, seen = {}, {} end
    run_start(run, hist, size, channel, epoch)
    for i = 1, count do
      local key, payload = '', nil
      if keyed then
        key, payload = ARGV[a], ARGV[a + 1]
        a = a + 2
      else
        payload = ARGV[a]
        a = a + 1
      end
      local prev = nil
      if key ~= '' then
        -- A key given twice in one call: its first message is not remembered in Redis yet (see below).
        local o = seen[key]
        if o then prev = epoch .. ' ' .. o else prev = redis.call('GET', prefix .. key) end
      end
      if prev then
        local sp = string.find(prev, ' ', 1, true)
        dups[#dups + 1] = { i, tonumber(string.sub(prev, sp + 1)), string.sub(prev, 1, sp - 1) }
      else
        offset = offset + 1
        written = written + 1
        run_add(run, offset, stamp, written, payload)
        if key ~= '' then
          seen[key] = offset
          keyed_at[#keyed_at + 1] = key
          keyed_at[#keyed_at + 1] = offset
        end
      end
    end
    run_flush(run)
    -- Keys are remembered once their messages are written: a key never names a message that is not.
    if keyed then
      for j = 1, #keyed_at, 2 do redis.call('SET', prefix .. keyed_at[j], epoch .. ' ' .. keyed_at[j + 1], 'EX', window) end
    end
  end
  if offset >= first then
    -- The announced top only moves up: every offset taken before this run is at or below it.
    if renew then
      if announce then redis.call('HSET', meta, 'o', offset, 'a', offset, 't', now_ms) else redis.call('HSET', meta, 'o', offset, 't', now_ms) end
      if size > 0 then redis.call('PEXPIRE', hist, ttl_ms) end
      redis.call('PEXPIRE', meta, ttl_ms)
    elseif announce then
      redis.call('HSET', meta, 'o', offset, 'a', offset)
    else
      redis.call('HSET', meta, 'o', offset)
    end
  elseif renew then
    -- Only duplicates: the channel was used, but its history was not written; t stays, so the next
    -- run that writes renews both.
    redis.call('PEXPIRE', meta, ttl_ms)
  end
  replies[#replies + 1] = { epoch, first, dups }
end
return { stamp, replies }
