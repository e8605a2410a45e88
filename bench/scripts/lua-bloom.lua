-- A Bloom filter in Redis Lua, the usual way without RedisBloom: the bench's baseline for
-- BF.ADD / BF.EXISTS (bench/scripts/protection.sh loads it twice, __MODE__ replaced by `add`
-- and by `exists`). 1,000,000 items at 1%: m = 9,585,059 bits, k = 7 positions by double
-- hashing of two 32-bit halves of SHA1(item). KEYS[1] = the filter (a string of bits),
-- ARGV[1] = the item. add returns 1 when a bit was clear (new item), exists 1 when all set.
local m = 9585059
local k = 7
local h = redis.sha1hex(ARGV[1])
local a = tonumber(string.sub(h, 1, 8), 16)
local b = tonumber(string.sub(h, 9, 16), 16)
local mode = '__MODE__'
local result = 0
if mode == 'exists' then result = 1 end
for i = 0, k - 1 do
    local bit = (a + i * b) % m
    if mode == 'add' then
        if redis.call('SETBIT', KEYS[1], bit, 1) == 0 then result = 1 end
    elseif redis.call('GETBIT', KEYS[1], bit) == 0 then
        return 0
    end
end
return result
