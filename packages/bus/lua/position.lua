-- The channel's position {epoch, last announced offset}; creates the epoch when the channel has none, so
-- a subscriber's starting position stays valid for the first publish.
-- KEYS[1] meta hash  KEYS[2] history stream   ARGV[1] TTL seconds
local epoch = ensure_epoch(KEYS[1], KEYS[2], tonumber(ARGV[1]))
return { epoch, announced(KEYS[1]) }
