-- The channel's epoch `ARGV[1]` reused offsets (a failover lost acknowledged writes): start a new epoch
-- unless the channel already moved on, so that no position of the abandoned one is ever recovered from
-- messages it did not name. Several edges may notice at once: only the first changes anything.
-- KEYS[1] meta hash  KEYS[2] history stream   ARGV[1] the abandoned epoch  ARGV[2] TTL seconds
-- Returns { epoch, top offset } after the change.
if redis.call('HGET', KEYS[1], 'e') == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
local epoch = ensure_epoch(KEYS[1], KEYS[2], tonumber(ARGV[2]))
return { epoch, announced(KEYS[1]) }
