-- Creates an object and publishes its change event, atomically.
-- KEYS[1] sb:{s}:meta:<channel>  [2] sb:{s}:h:<channel>  [3] sb:{s}:feed  [4] sb:{s}:ids:<channel>
-- [5] sb:{s}:seq:<channel>; the object key is [11] .. id (same hash tag). ARGV: see sb_args.
-- Every check comes before the first write, and the event is appended before the object is written,
-- so a refusal changes nothing and a failing XADD leaves no object without its event.
-- Returns { 'ok', data, epoch, offset, id } | { 'too_large', bytes } | { 'ids_exhausted' }.
local a = sb_args()
local id = (tonumber(redis.call('GET', KEYS[5])) or 0) + 1
if id > 4294967295 then return { 'ids_exhausted' } end
local ids = string.format('%d', id)
local obj = a.objPrefix .. ids
if redis.call('EXISTS', obj) == 1 then return redis.error_reply('ERR store sequence of ' .. a.channel .. ' is behind its objects') end
local v, keys, vals = {}, {}, {}
for i = 1, #a.parts do v[i] = 1 end
for j = 1, #a.sets do
  keys[j] = a.sets[j][1]
  vals[a.sets[j][1]] = a.sets[j][2]
end
local data = sb_assemble(ids, v, keys, vals)
if #data > a.maxBytes then return { 'too_large', #data } end
local pos = sb_publish(a, sb_payload(a.ts, sb_attrs('create', id, a, sb_all(a), nil, vals), data))
redis.call('SET', KEYS[5], ids)
sb_hset(obj, v, a.sets)
redis.call('ZADD', KEYS[4], id, ids)
sb_reindex(a, ids, nil, vals)
return { 'ok', data, pos[1], pos[2], ids }
