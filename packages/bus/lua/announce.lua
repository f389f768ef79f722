-- Announces what publish.lua committed without announcing (replicated publishing, once enough replicas
-- have it), for the channels of one shard in one call: per channel, every message of the epoch after the
-- announced top up to its offset, read back from the channel's history, gets its shard feed entry, and
-- the announced top moves to that offset. Messages of other edges committed meanwhile are announced
-- too: a WAIT that covers a write covers every write before it. Nothing happens to a channel whose
-- epoch changed meanwhile (abandoned).
-- KEYS[1] shard feed  KEYS[2j], KEYS[2j+1] the j-th channel's meta hash and history stream
-- ARGV[1] feed MAXLEN; then per channel: channel, epoch, announce up to this offset
-- Returns per channel the announced top afterwards, or -1 when the epoch had changed.
local tops = {}
local a = 2
for k = 2, #KEYS, 2 do
  local meta, hist = KEYS[k], KEYS[k + 1]
  local channel, epoch, upto = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  a = a + 3
  if redis.call('HGET', meta, 'e') ~= epoch then
    tops[#tops + 1] = -1
  else
    local from = announced(meta) + 1
    if upto >= from then
      local entries = redis.call('XRANGE', hist, from .. '-0', upto .. '-0')
      for _, entry in ipairs(entries) do
        local offset = tonumber(string.match(entry[1], '^(%d+)'))
        local f = entry[2]
        local payload, wid
        for j = 1, #f, 2 do
          if f[j] == 'p' then payload = f[j + 1] elseif f[j] == 'w' then wid = f[j + 1] end
        end
        redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'c', channel, 'o', offset, 'e', epoch, 'p', payload, 'w', wid or '')
      end
      redis.call('HSET', meta, 'a', upto)
      tops[#tops + 1] = upto
    else
      tops[#tops + 1] = from - 1
    end
  end
end
return tops
