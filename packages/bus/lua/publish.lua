-- Publish messages to one channel, atomically and in order: offsets taken at once (HINCRBY by n),
-- each message appended to the shard's live feed and the channel's history (append_message), TTLs
-- renewed once. One message is a batch of one.
-- KEYS[1] sb:{s}:meta:<channel>  hash {e = epoch, o = last offset}
-- KEYS[2] sb:{s}:h:<channel>     history stream, entry id = <offset>-0, fields p = payload, w = write id
-- KEYS[3] sb:{s}:feed            shard feed, fields c (channel), o (offset), e (epoch), p (payload), w
-- ARGV[1] channel  ARGV[2] history size  ARGV[3] TTL seconds  ARGV[4] feed MAXLEN  ARGV[5..] payloads
-- Returns { epoch, offset of the first message }.
local ttl = tonumber(ARGV[3])
local epoch = ensure_epoch(KEYS[1], KEYS[2], ttl)
local n = #ARGV - 4
local last = redis.call('HINCRBY', KEYS[1], 'o', n)
local first = last - n + 1
redis.call('EXPIRE', KEYS[1], ttl)
local size = tonumber(ARGV[2])
local stamp = write_stamp()
for i = 1, n do
  append_message(KEYS[2], KEYS[3], ARGV[1], size, ARGV[4], epoch, first + i - 1, stamp .. '-' .. i, ARGV[4 + i])
end
if size > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
return { epoch, first }
