-- Store helpers, loaded after the bus prelude (ensure_epoch) and before each store script.
--
-- An object is a hash: field 'v' holds the version vector "a,b,…" (one counter per part, in part
-- order); every other field is a top-level field of the object, named by the JSON text of its name
-- (e.g. '"name"') and holding the JSON text of its value. The JS side writes both with
-- JSON.stringify, so Lua never parses JSON (cjson would round numbers to 14 digits and turn [] into
-- {}): it compares texts and concatenates them.

-- "a,b,c" → { a, b, c } as numbers ('' → {}).
local function sb_split(s)
  local out = {}
  for n in string.gmatch(s, '[^,]+') do out[#out + 1] = tonumber(n) end
  return out
end

-- { a, b } → "a,b" (integers, never in exponent form).
local function sb_vtext(v)
  local out = {}
  for i = 1, #v do out[i] = string.format('%d', v[i]) end
  return table.concat(out, ',')
end

-- An object hash → v (numbers), keys (JSON names in hash order), vals (JSON name → JSON value);
-- nil when there is no such object.
local function sb_load(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return nil end
  local v, keys, vals = {}, {}, {}
  for i = 1, #flat, 2 do
    local k = flat[i]
    if k == 'v' then
      v = sb_split(flat[i + 1])
    else
      keys[#keys + 1] = k
      vals[k] = flat[i + 1]
    end
  end
  return v, keys, vals
end

-- The object's JSON text: id, v, then the fields in `keys` order. Mirrors assembleObject (model.ts).
local function sb_assemble(id, v, keys, vals)
  local out = { '{"id":', id, ',"v":[', sb_vtext(v), ']' }
  for i = 1, #keys do
    local k = keys[i]
    out[#out + 1] = ','
    out[#out + 1] = k
    out[#out + 1] = ':'
    out[#out + 1] = vals[k]
  end
  out[#out + 1] = '}'
  return table.concat(out)
end

-- ARGV of the write scripts (create, merge, remove):
-- [1] channel  [2] history size  [3] TTL seconds  [4] feed MAXLEN  [5] ts, msgpack-encoded by the bus
-- codec  [6] max object bytes  [7] id ('' on create)  [8] expected v ('-': no check, else "a,b,…")
-- [9] part names "p1,p2,…"  [10] touched parts, one '1'/'0' per part  [11] object key prefix
-- [12] index key prefix  [13] k, then k indexed fields as (JSON name, plain name) pairs; then m, then
-- m (JSON name, JSON value) pairs to set; then u, then u JSON names to delete.
local function sb_args()
  local a = {
    channel = ARGV[1], size = tonumber(ARGV[2]), ttl = tonumber(ARGV[3]), maxlen = ARGV[4], ts = ARGV[5],
    maxBytes = tonumber(ARGV[6]), id = ARGV[7], expect = ARGV[8], objPrefix = ARGV[11], ixPrefix = ARGV[12],
    parts = {}, touched = {}, indexed = {}, sets = {}, unsets = {},
  }
  for p in string.gmatch(ARGV[9], '[^,]+') do a.parts[#a.parts + 1] = p end
  for i = 1, #ARGV[10] do a.touched[i] = string.sub(ARGV[10], i, i) == '1' end
  local i = 13
  local k = tonumber(ARGV[i]); i = i + 1
  for j = 1, k do a.indexed[j] = { ARGV[i], ARGV[i + 1] }; i = i + 2 end
  local m = tonumber(ARGV[i]); i = i + 1
  for j = 1, m do a.sets[j] = { ARGV[i], ARGV[i + 1] }; i = i + 2 end
  local u = tonumber(ARGV[i]); i = i + 1
  for j = 1, u do a.unsets[j] = ARGV[i]; i = i + 1 end
  return a
end

-- Whether `expect` ("a,b,…") matches v at every part where `at` is true (every part when nil).
local function sb_versions_match(v, expect, at)
  local e = sb_split(expect)
  for i = 1, #v do
    if (at == nil or at[i]) and e[i] ~= v[i] then return false end
  end
  return true
end

-- Every part: true.
local function sb_all(a)
  local all = {}
  for i = 1, #a.parts do all[i] = true end
  return all
end

-- The change event's attrs. Mirrors eventAttrs (model.ts). `before`/`after`: JSON name → JSON value.
local function sb_attrs(op, id, a, changed, before, after)
  local attrs = { op = op, id = id }
  for i = 1, #a.parts do
    if changed[i] then attrs['part.' .. a.parts[i]] = true end
  end
  for j = 1, #a.indexed do
    local key, name = a.indexed[j][1], a.indexed[j][2]
    if before and before[key] then attrs['was.' .. name] = before[key] end
    if after and after[key] then attrs['f.' .. name] = after[key] end
  end
  return attrs
end

-- The bus payload [ts, attrs, data] as the bus codec (encodePayload) writes it: a 3-array, the ts as
-- JS encoded it, the attrs map and the data string. Attrs are strings, booleans and the id (< 2^32,
-- so a msgpack uint32 at most: a uint64 would decode as BigInt).
local function sb_payload(ts, attrs, data)
  return '\147' .. ts .. cmsgpack.pack(attrs) .. cmsgpack.pack(data)
end

-- Appends one change event to the channel exactly as the bus's publish.lua does for one message:
-- epoch, next offset, then append_message (the bus prelude's: history entry, then the announcement —
-- feed entry and announced top — both with the write id), history trimmed with its TTL.
-- Returns { epoch, offset }.
local function sb_publish(a, payload)
  local meta, hist, feed = KEYS[1], KEYS[2], KEYS[3]
  local epoch = ensure_epoch(meta, hist, a.ttl)
  local offset = redis.call('HINCRBY', meta, 'o', 1)
  redis.call('EXPIRE', meta, a.ttl)
  append_message(meta, hist, feed, a.channel, a.size, a.maxlen, epoch, offset, write_stamp() .. '-1', payload, true)
  if a.size > 0 then redis.call('EXPIRE', hist, a.ttl) end
  return { epoch, offset }
end

-- Moves the object's id between index sets where an indexed field's value changed.
local function sb_reindex(a, id, before, after)
  for j = 1, #a.indexed do
    local key, name = a.indexed[j][1], a.indexed[j][2]
    local b = before and before[key]
    local n = after and after[key]
    if b ~= n then
      if b then redis.call('ZREM', a.ixPrefix .. '|' .. name .. '|' .. b, id) end
      if n then redis.call('ZADD', a.ixPrefix .. '|' .. name .. '|' .. n, id, id) end
    end
  end
end

-- HSET of the version vector and fields, in bounded chunks (unpack has a stack limit).
local function sb_hset(key, v, sets)
  local args = { 'v', sb_vtext(v) }
  for j = 1, #sets do
    args[#args + 1] = sets[j][1]
    args[#args + 1] = sets[j][2]
    if #args >= 1000 then
      redis.call('HSET', key, unpack(args))
      args = {}
    end
  end
  if #args > 0 then redis.call('HSET', key, unpack(args)) end
end

-- HDEL in bounded chunks.
local function sb_hdel(key, names)
  for j = 1, #names, 500 do
    redis.call('HDEL', key, unpack(names, j, math.min(j + 499, #names)))
  end
end
