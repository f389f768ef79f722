-- Shared by every script (prepended when the scripts are loaded): the channel's epoch, created when
-- the channel has none. A new epoch gets a fresh history and restarts the offsets at 0.
-- meta: the channel's meta hash, hist: its history stream, ttl: seconds.
local function ensure_epoch(meta, hist, ttl)
  local epoch = redis.call('HGET', meta, 'e')
  if epoch then return epoch end
  local t = redis.call('TIME')
  epoch = string.format('%x%05x', tonumber(t[1]), tonumber(t[2]))
  redis.call('HSET', meta, 'e', epoch, 'o', 0)
  redis.call('EXPIRE', meta, ttl)
  redis.call('DEL', hist)
  return epoch
end
