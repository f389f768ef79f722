-- Shared by every script (prepended when the scripts are loaded), and by the object store's scripts
-- (busLuaPrelude), so a channel is written the same way wherever it is written.

-- The channel's meta hash: e = epoch, o = last offset taken, a = last offset announced. Messages up to
-- `a` are visible (position, history, the feed); those between `a` and `o` are committed but not yet
-- announced (replicated publishing announces a message only once enough replicas have it).

-- The channel's epoch, created when the channel has none. A new epoch gets a fresh history and restarts
-- the offsets at 0. meta: the channel's meta hash, hist: its history stream, ttl: seconds.
local function ensure_epoch(meta, hist, ttl)
  local epoch = redis.call('HGET', meta, 'e')
  if epoch then return epoch end
  local t = redis.call('TIME')
  epoch = string.format('%x%05x', tonumber(t[1]), tonumber(t[2]))
  redis.call('HSET', meta, 'e', epoch, 'o', 0, 'a', 0)
  redis.call('EXPIRE', meta, ttl)
  redis.call('DEL', hist)
  return epoch
end

-- The identity of the writes of this script run: the server's time in microseconds. A message's write
-- id is `<that>-<index in the run>`; it travels with the message in the feed and in the history, so an
-- edge that sees an offset again can tell a redelivery (same write id) from a reused offset (a newer
-- write: a failover lost acknowledged messages and the offsets went back).
local function write_stamp()
  local t = redis.call('TIME')
  return string.format('%d', tonumber(t[1]) * 1000000 + tonumber(t[2]))
end

-- The last announced offset (channels written before announcing existed: the last offset taken).
local function announced(meta)
  local a = redis.call('HGET', meta, 'a')
  if a then return tonumber(a) end
  return tonumber(redis.call('HGET', meta, 'o'))
end

-- The shard feed entry of one message (c, o, e, p, w): the single-message layout every reader reads.
local function feed_single(feed, maxlen, channel, epoch, offset, wid, payload)
  redis.call('XADD', feed, 'MAXLEN', '~', maxlen, '*', 'c', channel, 'o', offset, 'e', epoch, 'p', payload, 'w', wid)
end

-- Announces one message at `offset` of `epoch` with write id `wid`: its feed entry, and the announced
-- top moves up to it (never down: announcements of one channel may come out of order).
local function announce_message(meta, feed, channel, maxlen, epoch, offset, wid, payload)
  feed_single(feed, maxlen, channel, epoch, offset, wid, payload)
  if announced(meta) < offset then redis.call('HSET', meta, 'a', offset) end
end

-- Run entries. The messages of one channel written by one script run take consecutive offsets and write
-- ids (<stamp>-<index>, index one up per message), so they are stored and announced as runs: one
-- history entry and one feed entry per run of at most `limit` messages (ARGV of the scripts; 1 writes
-- one entry per message) and about RUN_BYTES of payload (or one larger message). One XADD per run
-- instead of two per message is most of what a publish costs Redis; the byte bound keeps what
-- `MAXLEN ~` (feed) and the history's trim bound in memory what it was with one message per entry.
--   history entry <first>-0: w (write id of the first), then p (payload) per message
--   feed entry: c (channel), o (first offset), e (epoch), w, then p per message
-- Message i of an entry has offset first+i and write id <stamp>-<index+i>. A run of one message keeps
-- the single-message layouts (history: p, w; feed: c, o, e, p, w), which readers of every version read.
local RUN_BYTES = 16384

-- The run state of one script call, reused for each channel (run_start): a script writes many channels and
-- a table per channel costs more than the fields. `feed` nil: messages are not announced; a caller whose
-- channels are in different shards (publish.lua on a standalone Redis) sets r.feed before each channel's
-- run_start. run_add, run_flush.
local function run_new(feed, maxlen, limit)
  return { feed = feed, maxlen = maxlen, limit = limit, n = 0, bytes = 0, p = {}, size = 0 }
end

-- Starts the runs of `channel` (history `hist` keeping `size` messages, 0: none) in `epoch`.
local function run_start(r, hist, size, channel, epoch)
  r.hist = hist
  r.size = size
  r.channel = channel
  r.epoch = epoch
end

-- The history trim after writing up to offset `last`: entries before the returned id go, so that at least
-- `size` messages stay whole (the entry holding the oldest of them may start up to limit-1 before it).
local function history_minid(last, size, limit)
  return math.max(last - size - limit + 1, 0)
end

-- One message in the single-message layouts: its history entry (`size` 0: none) and, when `feed` is
-- given, its feed entry.
local function write_single(hist, size, limit, feed, maxlen, channel, epoch, offset, wid, payload)
  if size > 0 then redis.call('XADD', hist, 'MINID', '~', history_minid(offset, size, limit), offset .. '-0', 'p', payload, 'w', wid) end
  if feed then feed_single(feed, maxlen, channel, epoch, offset, wid, payload) end
end

-- Writes the open run: its history entry, then its feed entry.
local function run_flush(r)
  if r.n == 0 then return end
  local p = r.p
  if r.n == 1 then
    write_single(r.hist, r.size, r.limit, r.feed, r.maxlen, r.channel, r.epoch, r.first, r.wid, p[1])
  else
    if r.size > 0 then
      local f = { 'w', r.wid }
      for i = 1, r.n do f[#f + 1] = 'p'; f[#f + 1] = p[i] end
      redis.call('XADD', r.hist, 'MINID', '~', history_minid(r.next_offset - 1, r.size, r.limit), r.first .. '-0', unpack(f))
    end
    if r.feed then
      local f = { 'c', r.channel, 'o', r.first, 'e', r.epoch, 'w', r.wid }
      for i = 1, r.n do f[#f + 1] = 'p'; f[#f + 1] = p[i] end
      redis.call('XADD', r.feed, 'MAXLEN', '~', r.maxlen, '*', unpack(f))
    end
  end
  r.n = 0
  r.bytes = 0
end

-- Adds the message at `offset` with write id <stamp>-<idx> to the open run, first closing it when the
-- message does not follow its last one (offset and index one up, same stamp). A message without a write
-- id (stamp nil: written before write ids existed) is a run of its own.
local function run_add(r, offset, stamp, idx, payload)
  if r.n > 0 and (stamp == nil or stamp ~= r.stamp or idx ~= r.next_idx or offset ~= r.next_offset) then run_flush(r) end
  if r.n == 0 then
    r.first = offset
    r.stamp = stamp
    r.wid = ''
    if stamp then r.wid = stamp .. '-' .. idx end
  end
  r.n = r.n + 1
  r.p[r.n] = payload
  r.bytes = r.bytes + #payload
  r.next_offset = offset + 1
  if stamp then r.next_idx = idx + 1 end
  if stamp == nil or r.n >= r.limit or r.bytes >= RUN_BYTES then run_flush(r) end
end

-- The id of the entry of history `hist` that holds `offset` (a run entry may start before it), or nil
-- when no entry does (trimmed, expired, or a hole).
local function history_entry_at(hist, offset)
  local e = redis.call('XREVRANGE', hist, offset .. '-0', '-', 'COUNT', 1)[1]
  if not e then return nil end
  local first = tonumber(string.match(e[1], '^(%d+)'))
  local n = 0
  for j = 1, #e[2], 2 do if e[2][j] == 'p' then n = n + 1 end end
  if first + n - 1 < offset then return nil end
  return e[1]
end

-- Appends one message at `offset` of `epoch` with write id `wid`: the history entry <offset>-0 (when the
-- channel keeps history), then — unless `announce` is false — its announcement. The feed entry is
-- written last: Redis does not undo a script's earlier writes when a later command fails, and a feed
-- entry is what edges deliver, so nothing is delivered unless everything before it was written.
local function append_message(meta, hist, feed, channel, size, maxlen, epoch, offset, wid, payload, announce)
  if size > 0 then
    redis.call('XADD', hist, 'MAXLEN', '~', size, offset .. '-0', 'p', payload, 'w', wid)
  end
  if announce then announce_message(meta, feed, channel, maxlen, epoch, offset, wid, payload) end
end
