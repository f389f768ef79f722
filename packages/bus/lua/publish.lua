-- Publish one message to a channel, atomically: next offset (a new epoch when the channel has none),
-- append to the channel's history (trimmed, with TTL) and to the shard's live feed.
-- KEYS[1] sb:{s}:meta:<channel>  hash {e = epoch, o = last offset}
-- KEYS[2] sb:{s}:h:<channel>     history stream, entry id = <offset>-0, field p = payload
-- KEYS[3] sb:{s}:feed            shard feed, fields c (channel), o (offset), e (epoch), p (payload)
-- ARGV[1] channel  ARGV[2] payload (msgpack)  ARGV[3] history size  ARGV[4] TTL seconds  ARGV[5] feed MAXLEN
local epoch = redis.call('HGET', KEYS[1], 'e')
local ttl = tonumber(ARGV[4])
if not epoch then
  local t = redis.call('TIME')
  epoch = string.format('%x%05x', tonumber(t[1]), tonumber(t[2]))
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
  redis.call('DEL', KEYS[2])
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
redis.call('EXPIRE', KEYS[1], ttl)
local size = tonumber(ARGV[3])
if size > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', size, offset .. '-0', 'p', ARGV[2])
  redis.call('EXPIRE', KEYS[2], ttl)
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'c', ARGV[1], 'o', offset, 'e', epoch, 'p', ARGV[2])
return { epoch, offset }
