-- Announces messages committed by publish.lua without announcing (replicated publishing, once enough
-- replicas have them): their shard feed entries, and the announced top moves up to the last of them.
-- Nothing happens when the channel's epoch changed meanwhile (abandoned): those messages are gone with it.
-- KEYS[1] meta hash  KEYS[2] shard feed
-- ARGV[1] channel  ARGV[2] feed MAXLEN  ARGV[3] epoch  ARGV[4] first offset  ARGV[5] write stamp
-- ARGV[6..] payloads (as published)
-- Returns 1 when announced, 0 when the epoch had changed.
if redis.call('HGET', KEYS[1], 'e') ~= ARGV[3] then return 0 end
local first = tonumber(ARGV[4])
for i = 6, #ARGV do
  local k = i - 5
  announce_message(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], first + k - 1, ARGV[5] .. '-' .. k, ARGV[i])
end
return 1
