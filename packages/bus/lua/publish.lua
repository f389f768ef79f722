-- Publish messages to one channel, atomically and in order. A message with an idempotency key whose key
-- is still remembered is not published again: its first position is returned (duplicate). Every other
-- message takes the next offset, is appended to the channel's history and, when ARGV[5] is 1, announced
-- (shard feed entry, announced top); its key is remembered for ARGV[6] seconds. TTLs renewed once.
-- Replicated publishing passes 0 and announces with announce.lua once enough replicas have the messages.
-- KEYS[1] sb:{s}:meta:<channel>  hash {e = epoch, o = last offset, a = last announced offset}
-- KEYS[2] sb:{s}:h:<channel>     history stream, entry id = <offset>-0, fields p = payload, w = write id
-- KEYS[3] sb:{s}:feed            shard feed, fields c (channel), o (offset), e (epoch), p (payload), w
-- ARGV[1] channel  ARGV[2] history size  ARGV[3] TTL seconds  ARGV[4] feed MAXLEN  ARGV[5] announce (1/0)
-- ARGV[6] idempotency window seconds  ARGV[7] idempotency key prefix sb:{s}:idem:<channel>: (same hash
-- tag as KEYS: one slot)  ARGV[8..] per message: its idempotency key ('' for none), payload
-- Returns { epoch, write stamp, { {offset, epoch, duplicate 0/1}, … } }; the new messages' write ids are
-- <stamp>-1, <stamp>-2, … in order.
local ttl = tonumber(ARGV[3])
local epoch = ensure_epoch(KEYS[1], KEYS[2], ttl)
local size = tonumber(ARGV[2])
local announce = ARGV[5] == '1'
local window = tonumber(ARGV[6])
local stamp = write_stamp()
local out = {}
local n = 0
for i = 8, #ARGV, 2 do
  local idem = nil
  if ARGV[i] ~= '' then idem = ARGV[7] .. ARGV[i] end
  local prev = idem and redis.call('GET', idem)
  if prev then
    local sp = string.find(prev, ' ', 1, true)
    out[#out + 1] = { tonumber(string.sub(prev, sp + 1)), string.sub(prev, 1, sp - 1), 1 }
  else
    local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
    n = n + 1
    append_message(KEYS[1], KEYS[2], KEYS[3], ARGV[1], size, ARGV[4], epoch, offset, stamp .. '-' .. n, ARGV[i + 1], announce)
    if idem then redis.call('SET', idem, epoch .. ' ' .. offset, 'EX', window) end
    out[#out + 1] = { offset, epoch, 0 }
  end
end
redis.call('EXPIRE', KEYS[1], ttl)
if size > 0 and n > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
return { epoch, stamp, out }
