-- Publish several messages to one channel in one call: the offsets are taken at once (HINCRBY by n),
-- the TTLs are renewed once, and each message is appended to the history and the shard feed, in order.
-- KEYS[1] meta hash  KEYS[2] history stream  KEYS[3] shard feed
-- ARGV[1] channel  ARGV[2] history size  ARGV[3] TTL seconds  ARGV[4] feed MAXLEN  ARGV[5..] payloads
-- Returns { epoch, offset of the first message }.
local epoch = redis.call('HGET', KEYS[1], 'e')
local ttl = tonumber(ARGV[3])
if not epoch then
  local t = redis.call('TIME')
  epoch = string.format('%x%05x', tonumber(t[1]), tonumber(t[2]))
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
  redis.call('DEL', KEYS[2])
end
local n = #ARGV - 4
local last = redis.call('HINCRBY', KEYS[1], 'o', n)
local first = last - n + 1
redis.call('EXPIRE', KEYS[1], ttl)
local size = tonumber(ARGV[2])
for i = 1, n do
  local offset = first + i - 1
  if size > 0 then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', size, offset .. '-0', 'p', ARGV[4 + i])
  end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'c', ARGV[1], 'o', offset, 'e', epoch, 'p', ARGV[4 + i])
end
if size > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
return { epoch, first }
