-- A bounded query: candidates in ascending id order from a sorted set (the type's ids, or the index
-- of one indexed field's value), at most `scan` examined, at most `limit` returned.
-- KEYS[1] the candidates' sorted set (member = score = id)
-- ARGV[1] after id  [2] limit  [3] max scan  [4] object key prefix  [5] n, then n (JSON name, JSON
-- value) pairs that must all be equal.
-- Returns { next after id or '', object texts… }. Mirrors runQuery (store-memory.ts).
local after, limit, scan, prefix = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local n = tonumber(ARGV[5])
local cands = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. after, '+inf', 'LIMIT', 0, scan + 1)
local out = { '' }
local found = 0
for i = 1, math.min(#cands, scan) do
  local id = cands[i]
  local v, keys, vals = sb_load(prefix .. id)
  if v then
    local match = true
    for j = 0, n - 1 do
      if vals[ARGV[6 + 2 * j]] ~= ARGV[7 + 2 * j] then
        match = false
        break
      end
    end
    if match then
      out[#out + 1] = sb_assemble(id, v, keys, vals)
      found = found + 1
      if found == limit then
        if i < #cands then out[1] = id end
        return out
      end
    end
  end
end
if #cands > scan then out[1] = cands[scan] end
return out
