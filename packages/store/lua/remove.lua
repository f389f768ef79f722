-- Removes an object (if its whole v matches the expected one) and publishes the change event, whose
-- data is the object as it was, atomically.
-- KEYS[1] meta  [2] history  [3] feed  [4] ids  [5] seq  [6] the object. ARGV: see sb_args.
-- Returns { 'ok', data, epoch, offset } | { 'not_found' } | { 'version_conflict', current data }.
local a = sb_args()
local v, keys, vals = sb_load(KEYS[6])
if not v then return { 'not_found' } end
local data = sb_assemble(a.id, v, keys, vals)
if a.expect ~= '-' and not sb_versions_match(v, a.expect, nil) then return { 'version_conflict', data } end
local pos = sb_publish(a, sb_payload(a.ts, sb_attrs('remove', tonumber(a.id), a, sb_all(a), vals, nil), data))
redis.call('DEL', KEYS[6])
redis.call('ZREM', KEYS[4], a.id)
sb_reindex(a, a.id, vals, nil)
return { 'ok', data, pos[1], pos[2] }
