-- Announces what publish.lua committed without announcing (replicated publishing, once enough replicas
-- have it), for the channels of one shard in one call: per channel, every message of the epoch after the
-- announced top up to its offset, read back from the channel's history, gets its shard feed entry (runs
-- of one publish call share one, as publish.lua writes them), and the announced top moves to that
-- offset. Messages of other edges committed meanwhile are announced too: a WAIT that covers a write
-- covers every write before it. Nothing happens to a channel whose epoch changed meanwhile (abandoned).
-- KEYS[1] shard feed  KEYS[2j], KEYS[2j+1] the j-th channel's meta hash and history stream
-- ARGV[1] feed MAXLEN  ARGV[2] most messages per feed entry; then per channel: channel, epoch, announce
-- up to this offset
-- Returns per channel the announced top afterwards, or -1 when the epoch had changed.
local tops = {}
local limit = tonumber(ARGV[2])
local run = run_new(KEYS[1], ARGV[1], limit)
local a = 3
for k = 2, #KEYS, 2 do
  local meta, hist = KEYS[k], KEYS[k + 1]
  local channel, epoch, upto = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  a = a + 3
  if redis.call('HGET', meta, 'e') ~= epoch then
    tops[#tops + 1] = -1
  else
    local from = announced(meta) + 1
    if upto >= from then
      local start = history_entry_at(hist, from)
      if start then
        run_start(run, hist, 0, channel, epoch)
        for _, entry in ipairs(redis.call('XRANGE', hist, start, upto .. '-0')) do
          local first = tonumber(string.match(entry[1], '^(%d+)'))
          local f = entry[2]
          -- Write id of the entry's first message (p, w: one message; w, p, p, …: a run), split.
          local wid = nil
          for j = 1, #f, 2 do if f[j] == 'w' then wid = f[j + 1] end end
          local stamp, idx = nil, nil
          if wid then stamp, idx = string.match(wid, '^(%d+)%-(%d+)$') end
          if stamp then idx = tonumber(idx) end
          local i = 0
          for j = 1, #f, 2 do
            if f[j] == 'p' then
              local offset = first + i
              if offset >= from and offset <= upto then
                if stamp then run_add(run, offset, stamp, idx + i, f[j + 1]) else run_add(run, offset, nil, nil, f[j + 1]) end
              end
              i = i + 1
            end
          end
        end
        run_flush(run)
      end
      redis.call('HSET', meta, 'a', upto)
      tops[#tops + 1] = upto
    else
      tops[#tops + 1] = from - 1
    end
  end
end
return tops
