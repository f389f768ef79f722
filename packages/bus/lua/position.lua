-- The channel's position {epoch, last offset}; creates the epoch when the channel has none, so a
-- subscriber's starting position stays valid for the first publish.
-- KEYS[1] meta hash  KEYS[2] history stream   ARGV[1] TTL seconds
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  local t = redis.call('TIME')
  epoch = string.format('%x%05x', tonumber(t[1]), tonumber(t[2]))
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
  redis.call('DEL', KEYS[2])
end
return { epoch, tonumber(redis.call('HGET', KEYS[1], 'o')) }
