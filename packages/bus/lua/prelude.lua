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

-- Announces one message at `offset` of `epoch` with write id `wid`: the shard feed entry (c, o, e, p, w),
-- and the announced top moves up to it (never down: announcements of one channel may come out of order).
local function announce_message(meta, feed, channel, maxlen, epoch, offset, wid, payload)
  redis.call('XADD', feed, 'MAXLEN', '~', maxlen, '*', 'c', channel, 'o', offset, 'e', epoch, 'p', payload, 'w', wid)
  if announced(meta) < offset then redis.call('HSET', meta, 'a', offset) end
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
