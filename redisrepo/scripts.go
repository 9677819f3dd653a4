package redisrepo

import (
	"fmt"
	"strings"

	"github.com/redis/rueidis"
)

// Meta hash fields besides the section counts (section.list).
const (
	metaGen       = "gen"
	metaRenewed   = "renewed"
	metaLoaded    = "loaded"
	metaInterests = keyInterests // the count of interests
)

// luaLayout declares the key layout for the scripts, generated from the Go
// constants in keys.go.
var luaLayout = func() string {
	var secs []string
	for _, s := range sections {
		secs = append(secs, fmt.Sprintf("{%q, %q}", s.list, s.item))
	}
	return fmt.Sprintf(`
local F_GEN, F_RENEWED = %q, %q
local K_BASIC, K_INTERESTS = %q, %q
local SECTIONS = {%s}
`, metaGen, metaRenewed, keyBasic, keyInterests, strings.Join(secs, ", "))
}()

// luaGenKeys defines gen_keys, which lists every key of one generation
// (base = "pc:{u:<uuid>}:"), and unlink_all, which deletes such a list.
// Written once, used by every script that walks a generation: swap, delete
// and renew.
const luaGenKeys = `
local function gen_keys(base, gen)
  local p = base .. gen .. ':'
  local keys = {p .. K_BASIC, p .. K_INTERESTS}
  for _, s in ipairs(SECTIONS) do
    local list = p .. s[1]
    for _, id in ipairs(redis.call('LRANGE', list, 0, -1)) do
      keys[#keys + 1] = p .. s[2] .. ':' .. id
    end
    keys[#keys + 1] = list
  end
  return keys
end

-- unpack has a stack limit: unlink in batches.
local function unlink_all(keys)
  for i = 1, #keys, 500 do
    redis.call('UNLINK', unpack(keys, i, math.min(i + 499, #keys)))
  end
end
`

// swapScript flips meta to a freshly written generation and deletes the
// previous one; if the user's fence moved since the load began, it deletes
// the new generation instead (fence.go). It runs as plain EVAL inside Save's
// MULTI: an EVALSHA there could fail with NOSCRIPT after the generation's
// writes were queued.
//
// KEYS[1] meta, KEYS[2] fence. ARGV[1] user base, ARGV[2] new gen, ARGV[3]
// ttl ms, ARGV[4] the fence read before the load, ARGV[5...] field/value
// pairs for meta (gen included).
var swapScript = luaLayout + luaGenKeys + luaFenced + `
if fenced(KEYS[2], ARGV[4]) then
  unlink_all(gen_keys(ARGV[1], ARGV[2]))
  return redis.error_reply('` + errFencedReply + `')
end
local old = redis.call('HGET', KEYS[1], F_GEN)
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if old and old ~= ARGV[2] then
  unlink_all(gen_keys(ARGV[1], old))
end
return old
`

// deleteScript removes meta and its current generation.
//
// KEYS[1] meta. ARGV[1] user base.
var deleteScript = rueidis.NewLuaScript(luaLayout + luaGenKeys + `
local gen = redis.call('HGET', KEYS[1], F_GEN)
if gen then
  unlink_all(gen_keys(ARGV[1], gen))
end
return redis.call('UNLINK', KEYS[1])
`)

// renewScript extends the TTL of every key of the generation, unless the
// generation changed or someone renewed it since the reader decided to.
//
// KEYS[1] meta. ARGV[1] user base, ARGV[2] gen, ARGV[3] ttl ms,
// ARGV[4] now (unix ms), ARGV[5] renew only if renewed < this (unix ms).
// Returns the number of keys renewed, 0 when nothing was due.
var renewScript = rueidis.NewLuaScript(luaLayout + luaGenKeys + `
if redis.call('HGET', KEYS[1], F_GEN) ~= ARGV[2] then
  return 0
end
local renewed = tonumber(redis.call('HGET', KEYS[1], F_RENEWED))
if renewed and renewed >= tonumber(ARGV[5]) then
  return 0
end
local keys = gen_keys(ARGV[1], ARGV[2])
for _, k in ipairs(keys) do
  redis.call('PEXPIRE', k, ARGV[3])
end
redis.call('HSET', KEYS[1], F_RENEWED, ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return #keys + 1
`)

// readScript is the consistent fallback of Read: meta and every requested
// part of its generation in one atomic step, so that a concurrent save
// cannot delete the generation between reads.
//
// KEYS[1] meta. ARGV[1] user base, ARGV[2] "1" for basic, ARGV[3] "1" for
// interests, then LRANGE start and stop per section in SECTIONS order
// (start "" for a section not requested). Start and stop stay strings: a
// Lua number would lose precision beyond 2^53.
// Returns {} without meta, else {meta, basic, interests, {ids, item hashes}
// per section}, hashes as flat field/value arrays.
var readScript = rueidis.NewLuaScriptReadOnly(luaLayout + `
local meta = redis.call('HGETALL', KEYS[1])
local gen = redis.call('HGET', KEYS[1], F_GEN)
if not gen then
  return {}
end
local p = ARGV[1] .. gen .. ':'
local out = {meta, {}, {}}
if ARGV[2] == '1' then
  out[2] = redis.call('HGETALL', p .. K_BASIC)
end
if ARGV[3] == '1' then
  out[3] = redis.call('SMEMBERS', p .. K_INTERESTS)
end
for i, s in ipairs(SECTIONS) do
  local start, stop = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  local ids, items = {}, {}
  if start ~= '' then
    ids = redis.call('LRANGE', p .. s[1], start, stop)
    for _, id in ipairs(ids) do
      items[#items + 1] = redis.call('HGETALL', p .. s[2] .. ':' .. id)
    end
  end
  out[3 + i] = {ids, items}
end
return out
`)

// unlockScript deletes the lock only while it is still ours.
//
// KEYS[1] lock. ARGV[1] owner token.
var unlockScript = rueidis.NewLuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// touchScript slides a live session; it never recreates a gone one, whose
// partial hash would otherwise look like a session.
//
// KEYS[1] token, KEYS[2] data. ARGV[1] seen (unix ms), ARGV[2] ttl ms.
// Returns 1, or 0 when the session is gone.
var touchScript = rueidis.NewLuaScript(fmt.Sprintf(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], %q, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`, sessSeen))

// revokeAllScript ends every session in the user's index and raises the
// user's fence, so that no login or reload in flight undoes it.
//
// KEYS[1] index, KEYS[2] fence. ARGV[1] session key prefix, ARGV[2] data key
// suffix, ARGV[3] new fence value, ARGV[4] fence ttl ms.
// Returns {number of sessions that were still alive, every indexed id}.
var revokeAllScript = rueidis.NewLuaScript(`
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local live = 0
for _, id in ipairs(ids) do
  local k = ARGV[1] .. id
  live = live + redis.call('UNLINK', k)
  redis.call('UNLINK', k .. ARGV[2])
end
redis.call('DEL', KEYS[1])
return {live, ids}
`)

// putDataScript stores one data entry of a live session, with the session's
// remaining TTL.
//
// KEYS[1] token, KEYS[2] data. ARGV[1] field, ARGV[2] value, ARGV[3] max keys.
// Returns 1 stored, 0 session gone, -1 data full.
var putDataScript = rueidis.NewLuaScript(`
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then
  return 0
end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[3]) and redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  return -1
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
`)

// eraseScript deletes every key of the user, raising an erasure fence
// first: sessions, their data and the index, meta and its generation, and
// the reload lock. Returns every indexed session id.
//
// KEYS[1] index, KEYS[2] fence, KEYS[3] meta, KEYS[4] lock. ARGV[1] session
// key prefix, ARGV[2] data key suffix, ARGV[3] new fence value, ARGV[4]
// fence ttl ms, ARGV[5] user base.
var eraseScript = rueidis.NewLuaScript(luaLayout + luaGenKeys + `
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do
  redis.call('UNLINK', ARGV[1] .. id, ARGV[1] .. id .. ARGV[2])
end
local gen = redis.call('HGET', KEYS[3], F_GEN)
if gen then
  unlink_all(gen_keys(ARGV[5], gen))
end
redis.call('UNLINK', KEYS[1], KEYS[3], KEYS[4])
return ids
`)
