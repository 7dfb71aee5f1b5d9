/*
 * The fleet key ring in Redis: its keys and the Lua scripts that read and change them, each run
 * atomically by EVAL (fleet_ring.c polls and promotes, ring_store.c creates and writes back).
 *
 * Redis holds (prefix P, default "tlsr:"):
 *     P tk:<gen>   a ticket key sealed under the wrap key (AAD: label | gen), with a TTL: a
 *                  next key lives 2 periods + ack wait + lifetime + skew; on promotion the new
 *                  key gets period + ack wait + lifetime + skew and the one it replaces
 *                  lifetime + skew, after which Redis deletes it (and every server has wiped it)
 *     P cur        "<gen> <ms>": the encrypting generation and when it was promoted
 *     P next_at    when the next key was created (ms), for the acknowledgement deadline
 *     P ack:<gen>  the members holding key <gen>
 *     P members    sorted set of members, scored by when each stops counting as live (ms):
 *                  its last poll + 3 of its own poll intervals + 2 s
 *     P force      a rotation request: a keyed hash (name key) of the generation to rotate away
 *                  from, so only fleet key holders can ask; cleared by the promotion. A member
 *                  refuses one (counted) when its ring has no room without wiping a key whose
 *                  tickets are still valid (8 on demand within one ticket lifetime)
 *     P at:<gen>   when key <gen> was promoted (ms), with the key's TTL
 *     P use:<gen>  hash: member -> "issued presented", each member's counts for key <gen>
 *     P imp:<id>   a key imported from another server's file (tlsresume keys import), sealed
 *                  (AAD: label | id), 48 or 80 bytes, decrypt-only until its TTL runs out
 *     P imports    the set of import ids
 * All times are Redis's own clock (TIME in the scripts), so servers' clocks do not matter to
 * the schedule; they matter only to ticket ages, covered by the skew allowance. (Tests shift
 * that clock by an offset passed to every script, to run the schedule's rules in seconds.)
 *
 */
#include "ring_int.h"

/* The poll: ARGV prefix, member, liveness (ms), keys to read, observer ('1'), clock offset.
 * Returns now, generation, promoted at, members, unacknowledged, next at, force, n; then n
 * key fields (blob, PTTL, acknowledgements, "issued presented", promoted at) from the next key
 * down; then (id, blob, PTTL) per import. */
const char tlsr__ring_tick_lua[] =
    "local p = ARGV[1]\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[6])\n"
    "if ARGV[5] ~= '1' then\n"
    "  redis.call('ZADD', p .. 'members', now + tonumber(ARGV[3]), ARGV[2])\n"
    "  redis.call('ZREMRANGEBYSCORE', p .. 'members', '-inf', now)\n"
    "end\n"
    "local gen, promoted = 0, 0\n"
    "local cur = redis.call('GET', p .. 'cur')\n"
    "if cur then\n"
    "  local a, b = string.match(cur, '^(%d+) (%d+)$')\n"
    "  if a then gen = tonumber(a); promoted = tonumber(b) end\n"
    "end\n"
    "local members = redis.call('ZRANGEBYSCORE', p .. 'members', now, '+inf')\n"
    "local missing, ack, i = 0, p .. 'ack:' .. (gen + 1), 1\n"
    "while i <= #members do\n"
    "  local j = math.min(i + 999, #members)\n"
    "  local r = redis.pcall('SMISMEMBER', ack, unpack(members, i, j))\n"
    "  if type(r) == 'table' and not r.err then\n"
    "    for _, v in ipairs(r) do if v == 0 then missing = missing + 1 end end\n"
    "  else\n"
    "    for k = i, j do\n"
    "      if redis.call('SISMEMBER', ack, members[k]) == 0 then missing = missing + 1 end\n"
    "    end\n"
    "  end\n"
    "  i = j + 1\n"
    "end\n"
    "local out = {tostring(now), tostring(gen), tostring(promoted), tostring(#members),\n"
    "  tostring(missing), redis.call('GET', p .. 'next_at') or '0',\n"
    "  redis.call('GET', p .. 'force') or '', '0'}\n"
    "local g, n = gen + 1, 0\n"
    "while g >= 1 and n < tonumber(ARGV[4]) do\n"
    "  local k = redis.call('GET', p .. 'tk:' .. g)\n"
    "  if not k then\n"
    "    if g <= gen then break end\n"
    "    k = ''\n"
    "  end\n"
    "  local issued, presented = 0, 0\n"
    "  for _, v in ipairs(redis.call('HVALS', p .. 'use:' .. g)) do\n"
    "    local a, b = string.match(v, '^(%d+) (%d+)$')\n"
    "    if a then issued = issued + tonumber(a); presented = presented + tonumber(b) end\n"
    "  end\n"
    "  out[#out + 1] = k\n"
    "  out[#out + 1] = tostring(redis.call('PTTL', p .. 'tk:' .. g))\n"
    "  out[#out + 1] = tostring(redis.call('SCARD', p .. 'ack:' .. g))\n"
    "  out[#out + 1] = issued .. ' ' .. presented\n"
    "  out[#out + 1] = redis.call('GET', p .. 'at:' .. g) or '0'\n"
    "  g = g - 1\n"
    "  n = n + 1\n"
    "end\n"
    "out[8] = tostring(n)\n"
    "for _, id in ipairs(redis.call('SMEMBERS', p .. 'imports')) do\n"
    "  local k = redis.call('GET', p .. 'imp:' .. id)\n"
    "  if k then\n"
    "    out[#out + 1] = id\n"
    "    out[#out + 1] = k\n"
    "    out[#out + 1] = tostring(redis.call('PTTL', p .. 'imp:' .. id))\n"
    "  elseif ARGV[5] ~= '1' then\n"
    "    redis.call('SREM', p .. 'imports', id)\n"
    "  end\n"
    "end\n"
    "return out\n";

/* Promotion: a compare-and-set on P cur. ARGV prefix, expected generation, new generation,
 * TTL of the replaced key, TTL of the new one, clock offset. */
const char tlsr__ring_promote_lua[] =
    "local p = ARGV[1]\n"
    "local gen = 0\n"
    "local cur = redis.call('GET', p .. 'cur')\n"
    "if cur then gen = tonumber(string.match(cur, '^(%d+)')) or 0 end\n"
    "if gen ~= tonumber(ARGV[2]) then return 0 end\n"
    "if redis.call('EXISTS', p .. 'tk:' .. ARGV[3]) == 0 then return 0 end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[6])\n"
    "redis.call('SET', p .. 'cur', ARGV[3] .. ' ' .. tostring(now))\n"
    "redis.call('SET', p .. 'at:' .. ARGV[3], tostring(now), 'PX', ARGV[5])\n"
    "redis.call('PEXPIRE', p .. 'tk:' .. ARGV[3], ARGV[5])\n"
    "if gen > 0 then\n"
    "  redis.call('PEXPIRE', p .. 'tk:' .. gen, ARGV[4])\n"
    "  redis.call('PEXPIRE', p .. 'at:' .. gen, ARGV[4])\n"
    "  redis.call('PEXPIRE', p .. 'use:' .. gen, ARGV[4])\n"
    "end\n"
    "redis.call('DEL', p .. 'force', p .. 'next_at', p .. 'ack:' .. ARGV[3])\n"
    "return 1\n";

/* The next key, once (SET NX): ARGV prefix, generation, blob, TTL, clock offset. */
const char tlsr__ring_create_lua[] =
    "local p = ARGV[1]\n"
    "local gen = 0\n"
    "local cur = redis.call('GET', p .. 'cur')\n"
    "if cur then gen = tonumber(string.match(cur, '^(%d+)')) or 0 end\n"
    "if gen + 1 ~= tonumber(ARGV[2]) then return 0 end\n"
    "if redis.call('SET', p .. 'tk:' .. ARGV[2], ARGV[3], 'NX', 'PX', ARGV[4]) then\n"
    "  local t = redis.call('TIME')\n"
    "  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[5])\n"
    "  redis.call('SET', p .. 'next_at', tostring(now), 'PX', ARGV[4])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

/* The write-back after Redis forgot the ring (nothing when P cur exists): ARGV prefix, clock
 * offset, generation, blob, TTL, next blob or '', its TTL. */
const char tlsr__ring_republish_lua[] =
    "local p = ARGV[1]\n"
    "if redis.call('EXISTS', p .. 'cur') == 1 then return 0 end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])\n"
    "redis.call('SET', p .. 'tk:' .. ARGV[3], ARGV[4], 'PX', ARGV[5])\n"
    "redis.call('SET', p .. 'at:' .. ARGV[3], tostring(now), 'PX', ARGV[5])\n"
    "redis.call('SET', p .. 'cur', ARGV[3] .. ' ' .. tostring(now))\n"
    "if ARGV[6] ~= '' then\n"
    "  redis.call('SET', p .. 'tk:' .. (tonumber(ARGV[3]) + 1), ARGV[6], 'PX', ARGV[7])\n"
    "  redis.call('SET', p .. 'next_at', tostring(now), 'PX', ARGV[7])\n"
    "end\n"
    "return 1\n";
