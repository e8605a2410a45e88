-- Flash-sale stock deduction: takes ARGV[1] units from the stock at KEYS[1] only when enough
-- remain, and records the order in the list at KEYS[2].
-- Replies: the stock left after the sale, or -1 when there was not enough (nothing changes).
local wanted = tonumber(ARGV[1])
local stock = tonumber(redis.call('GET', KEYS[1]) or '0')
if stock < wanted then
    return -1
end
redis.call('RPUSH', KEYS[2], ARGV[2])
return redis.call('DECRBY', KEYS[1], wanted)
