-- The post-paid charge: TAT = max(TAT, now) + ARGV[1] (cost·T in µs) for KEYS[1], refusing
-- nothing. Returns 0.
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or 0, now) + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', tat),
  'PX', string.format('%.0f', math.max(1, math.ceil((tat - now) / 1000))))
return 0
