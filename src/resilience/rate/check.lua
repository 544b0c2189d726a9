-- GCRA over every rule of one check at once: all are charged or none. KEYS[i] is a rule's key
-- and ARGV[i] its cost·T in µs (0 for a cost of 0). Returns 0 when all were admitted (and
-- charged), else the wait in µs until they would be. The arithmetic is that of gcra.rs.
if redis.replicate_commands then redis.replicate_commands() end
local minute = 60000000
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tats, wait = {}, 0
for i, key in ipairs(KEYS) do
  local increment = tonumber(ARGV[i])
  local start = math.max(tats[key] or tonumber(redis.call('GET', key)) or 0, now)
  if increment == 0 then
    if start - now >= minute then wait = math.max(wait, start - now - minute + 1) end
  else
    local tat = start + increment
    if tat - now > minute then
      wait = math.max(wait, tat - now - minute)
    else
      tats[key] = tat
    end
  end
end
if wait > 0 then return wait end
for key, tat in pairs(tats) do
  redis.call('SET', key, string.format('%.0f', tat),
    'PX', string.format('%.0f', math.max(1, math.ceil((tat - now) / 1000))))
end
return 0
