-- Publish messages to one channel, atomically and in order: offsets taken at once (HINCRBY by n),
-- each message appended to the channel's history and, when ARGV[5] is 1, announced (shard feed entry,
-- announced top); TTLs renewed once. One message is a batch of one. Replicated publishing passes 0 and
-- announces with announce.lua once enough replicas have the messages.
-- KEYS[1] sb:{s}:meta:<channel>  hash {e = epoch, o = last offset, a = last announced offset}
-- KEYS[2] sb:{s}:h:<channel>     history stream, entry id = <offset>-0, fields p = payload, w = write id
-- KEYS[3] sb:{s}:feed            shard feed, fields c (channel), o (offset), e (epoch), p (payload), w
-- ARGV[1] channel  ARGV[2] history size  ARGV[3] TTL seconds  ARGV[4] feed MAXLEN  ARGV[5] announce (1/0)
-- ARGV[6..] payloads
-- Returns { epoch, offset of the first message, write stamp (write ids are <stamp>-<1..n>) }.
local ttl = tonumber(ARGV[3])
local epoch = ensure_epoch(KEYS[1], KEYS[2], ttl)
local n = #ARGV - 5
local last = redis.call('HINCRBY', KEYS[1], 'o', n)
local first = last - n + 1
redis.call('EXPIRE', KEYS[1], ttl)
local size = tonumber(ARGV[2])
local stamp = write_stamp()
local announce = ARGV[5] == '1'
for i = 1, n do
  append_message(KEYS[1], KEYS[2], KEYS[3], ARGV[1], size, ARGV[4], epoch, first + i - 1, stamp .. '-' .. i, ARGV[5 + i], announce)
end
if size > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
return { epoch, first, stamp }
