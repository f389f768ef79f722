-- Announces what publish.lua committed without announcing (replicated publishing, once enough replicas
-- have it): every message of the epoch after the announced top up to ARGV[4], read back from the
-- channel's history, gets its shard feed entry, and the announced top moves to ARGV[4]. Messages of
-- other edges committed meanwhile are announced too: a WAIT that covers a write covers every write
-- before it. Nothing happens when the epoch changed meanwhile (abandoned).
-- KEYS[1] meta hash  KEYS[2] history stream  KEYS[3] shard feed
-- ARGV[1] channel  ARGV[2] feed MAXLEN  ARGV[3] epoch  ARGV[4] announce up to this offset
-- Returns the announced top afterwards, or -1 when the epoch had changed.
if redis.call('HGET', KEYS[1], 'e') ~= ARGV[3] then return -1 end
local from = announced(KEYS[1]) + 1
local upto = tonumber(ARGV[4])
if upto < from then return from - 1 end
local entries = redis.call('XRANGE', KEYS[2], from .. '-0', upto .. '-0')
for _, entry in ipairs(entries) do
  local offset = tonumber(string.match(entry[1], '^(%d+)'))
  local f = entry[2]
  local payload, wid
  for j = 1, #f, 2 do
    if f[j] == 'p' then payload = f[j + 1] elseif f[j] == 'w' then wid = f[j + 1] end
  end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'c', ARGV[1], 'o', offset, 'e', ARGV[3], 'p', payload, 'w', wid or '')
end
redis.call('HSET', KEYS[1], 'a', upto)
return upto
