-- Announced messages after a position, read atomically with the channel's (announced) position.
-- KEYS[1] meta hash  KEYS[2] history stream
-- ARGV[1] epoch  ARGV[2] offset  ARGV[3] limit  ARGV[4] TTL seconds
-- Returns { epoch, top offset, recovered (0/1), entries } where entries are XRANGE items from the entry
-- holding offset+1 (a run entry may start before it) up to the one holding the top; the reader takes
-- the messages after the offset and up to the top from them (run_flush's layouts).
local epoch = ensure_epoch(KEYS[1], KEYS[2], tonumber(ARGV[4]))
local top = announced(KEYS[1])
local since = tonumber(ARGV[2])
if epoch ~= ARGV[1] or since > top then return { epoch, top, 0, {} } end
if since == top then return { epoch, top, 1, {} } end
if top - since > tonumber(ARGV[3]) then return { epoch, top, 0, {} } end
local start = history_entry_at(KEYS[2], since + 1)
if not start then return { epoch, top, 0, {} } end
return { epoch, top, 1, redis.call('XRANGE', KEYS[2], start, top .. '-0') }
