-- Merges top-level fields into an object if the touched parts' versions match, bumps those parts and
-- publishes the change event, atomically.
-- KEYS[1] meta  [2] history  [3] feed  [4] ids  [5] seq  [6] the object. ARGV: see sb_args.
-- Returns { 'ok', data, epoch, offset } | { 'not_found' } | { 'version_conflict', current data }
-- | { 'too_large', bytes }.
local a = sb_args()
local v, keys, vals = sb_load(KEYS[6])
if not v then return { 'not_found' } end
if a.expect ~= '-' and not sb_versions_match(v, a.expect, a.touched) then
  return { 'version_conflict', sb_assemble(a.id, v, keys, vals) }
end
-- The merged fields: stored ones in their order (deleted ones dropped), then new ones in patch order.
local nvals, nkeys = {}, {}
for i = 1, #keys do nvals[keys[i]] = vals[keys[i]] end
for j = 1, #a.sets do nvals[a.sets[j][1]] = a.sets[j][2] end
for j = 1, #a.unsets do nvals[a.unsets[j]] = nil end
for i = 1, #keys do
  if nvals[keys[i]] then nkeys[#nkeys + 1] = keys[i] end
end
for j = 1, #a.sets do
  if vals[a.sets[j][1]] == nil then nkeys[#nkeys + 1] = a.sets[j][1] end
end
local nv = {}
for i = 1, #v do
  if a.touched[i] then nv[i] = v[i] + 1 else nv[i] = v[i] end
end
local data = sb_assemble(a.id, nv, nkeys, nvals)
if #data > a.maxBytes then return { 'too_large', #data } end
local pos = sb_publish(a, sb_payload(a.ts, sb_attrs('merge', tonumber(a.id), a, a.touched, vals, nvals), data))
sb_hset(KEYS[6], nv, a.sets)
sb_hdel(KEYS[6], a.unsets)
sb_reindex(a, a.id, vals, nvals)
return { 'ok', data, pos[1], pos[2] }
