package redisrepo

import (
	"fmt"
	"strings"

	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/profile"
)

// Meta hash fields besides the section counts (section.list).
const (
	metaGen       = "gen"
	metaRenewed   = "renewed"
	metaLoaded    = "loaded"
	metaInterests = keyInterests // the count of interests
)

// luaLayout declares the key layout for the scripts, generated from the Go
// constants in keys.go and meta.go, and gens(meta), the distinct
// generations a meta points at ({} without meta), and genOf(meta, base,
// section), the generation a section is read from.
var luaLayout = func() string {
	var secs, names []string
	for _, s := range sections {
		secs = append(secs, fmt.Sprintf("{%q, %q}", s.list, s.item))
	}
	for s := range profile.NumSections {
		names = append(names, fmt.Sprintf("%q", s.String()))
	}
	return fmt.Sprintf(`
local F_GEN, F_RENEWED = %q, %q
local K_BASIC, K_INTERESTS = %q, %q
local SECTIONS = {%s}
local PARTS = {%s}
local function genOf(meta, base, part)
  return redis.call('HGET', meta, 'g:' .. part) or base
end
local function gens(meta)
  local base = redis.call('HGET', meta, F_GEN)
  local seen, out = {}, {}
  if not base then
    return out
  end
  for _, part in ipairs(PARTS) do
    local g = genOf(meta, base, part)
    if not seen[g] then
      seen[g] = true
      out[#out + 1] = g
    end
  end
  return out
end
`, metaGen, metaRenewed, keyBasic, keyInterests, strings.Join(secs, ", "), strings.Join(names, ", "))
}()

// writeScript writes one batch of a new generation (generation.go): each
// key with its TTL in the same atomic step, so that a save that dies
// between batches leaves only keys that expire by themselves. Nothing
// points at the generation yet, so readers never see these keys. It checks
// the fence first: a save that an erasure overtook writes nothing more, so
// that the erasure's sweep, which runs after its fence is set, leaves
// nothing of the user behind.
//
// KEYS[1] fence, KEYS[2...] the keys. ARGV[1] the fence read before the
// load, ARGV[2] ttl ms, then per key: its kind (h hash, l list, s set), the
// number n of values, and the n values (field/value pairs for a hash).
// Keys and values are bounded by the batch (batchKeys, chunkElems), so the
// script is too. Returns the number of keys written.
var writeScript = rueidis.NewLuaScript(luaFenced + `
if fenced(KEYS[1], ARGV[1]) then
  return redis.error_reply('` + errFencedReply + `')
end
local cmds = {` + writeHash + ` = 'HSET', ` + writeList + ` = 'RPUSH', ` + writeSet + ` = 'SADD'}
local i = 3
for k = 2, #KEYS do
  local n = tonumber(ARGV[i + 1])
  redis.call(cmds[ARGV[i]], KEYS[k], unpack(ARGV, i + 2, i + 1 + n))
  redis.call('PEXPIRE', KEYS[k], ARGV[2])
  i = i + 2 + n
end
return #KEYS - 1
`)

// switchScript makes a fully written generation current for every
// section: O(1), whatever the size of the profile. If the user's fence
// moved since the load began (fence.go), it changes nothing; Save then
// deletes the new generation. Last writer wins, as with any cache fill: it
// returns the generations it replaced, which Save deletes in batches.
//
// KEYS[1] meta, KEYS[2] fence. ARGV[1] new gen, ARGV[2] ttl ms, ARGV[3] the
// fence read before the load, ARGV[4...] field/value pairs for meta (gen
// and every section's pointer included).
var switchScript = rueidis.NewLuaScript(luaLayout + luaFenced + `
if fenced(KEYS[2], ARGV[3]) then
  return redis.error_reply('` + errFencedReply + `')
end
local old = gens(KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local out = {}
for _, g in ipairs(old) do
  if g ~= ARGV[1] then
    out[#out + 1] = g
  end
end
return out
`)

// sectionSwitchScript points one section at its freshly written generation
// (issue 12), in O(1), and touches nothing else of meta but that section's
// fields. It commits only if the fence is unchanged and the section still
// points at the generation the reload saw when it began: a whole save, a
// webhook's or an erasure's delete, or another reload that committed
// meanwhile make it write nothing, so that it never brings back older
// data. Returns the generation it replaced, or nil when it wrote nothing.
//
// KEYS[1] meta, KEYS[2] fence. ARGV[1] the fence read before the load,
// ARGV[2] the section, ARGV[3] the generation seen before the load,
// ARGV[4...] field/value pairs for meta.
var sectionSwitchScript = rueidis.NewLuaScript(luaLayout + luaFenced + `
if fenced(KEYS[2], ARGV[1]) then
  return redis.error_reply('` + errFencedReply + `')
end
local base = redis.call('HGET', KEYS[1], F_GEN)
if not base then
  return false
end
local cur = genOf(KEYS[1], base, ARGV[2])
if cur ~= ARGV[3] then
  return false
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
return cur
`)

// dropMetaScript deletes meta and returns the generations it pointed at,
// which the caller then deletes in batches: from here on readers find no
// profile.
//
// KEYS[1] meta.
var dropMetaScript = rueidis.NewLuaScript(luaLayout + `
local g = gens(KEYS[1])
redis.call('UNLINK', KEYS[1])
return g
`)

// renewScript claims the renewal of the user's profile: unless someone
// renewed it (or saved it whole) since the reader decided to, it records
// the renewal and extends meta's TTL, and returns the generations meta
// points at; the caller then extends their keys in batches (pexpireGen).
// Claiming first makes a second instance's renewal a no-op.
//
// KEYS[1] meta. ARGV[1] ttl ms, ARGV[2] now (unix ms), ARGV[3] renew only
// if renewed < this (unix ms). Returns the generations, {} when not claimed.
var renewScript = rueidis.NewLuaScript(luaLayout + `
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {}
end
local renewed = tonumber(redis.call('HGET', KEYS[1], F_RENEWED))
if renewed and renewed >= tonumber(ARGV[3]) then
  return {}
end
redis.call('HSET', KEYS[1], F_RENEWED, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return gens(KEYS[1])
`)

// pexpireScript sets the TTL of each of its keys that exists: one call for
// a batch of a generation's keys (pexpireGen).
//
// KEYS the keys. ARGV[1] ttl ms.
const pexpireScript = `
for _, k in ipairs(KEYS) do
  redis.call('PEXPIRE', k, ARGV[1])
end
return #KEYS
`

// readScript is the consistent fallback of Read: meta and every requested
// part of the generations it points at in one atomic step, so that a concurrent save
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
local function p(part)
  return ARGV[1] .. genOf(KEYS[1], gen, part) .. ':'
end
local out = {meta, {}, {}}
if ARGV[2] == '1' then
  out[2] = redis.call('HGETALL', p(K_BASIC) .. K_BASIC)
end
if ARGV[3] == '1' then
  out[3] = redis.call('SMEMBERS', p(K_INTERESTS) .. K_INTERESTS)
end
for i, s in ipairs(SECTIONS) do
  local start, stop = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  local ids, items = {}, {}
  if start ~= '' then
    local g = p(s[1])
    ids = redis.call('LRANGE', g .. s[1], start, stop)
    for _, id in ipairs(ids) do
      items[#items + 1] = redis.call('HGETALL', g .. s[2] .. ':' .. id)
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

// holdScript keeps a lock for ARGV[2] ms more, only while it is still ours:
// a failed section reload holds its lock for the retry backoff.
//
// KEYS[1] lock. ARGV[1] owner token, ARGV[2] ms.
var holdScript = rueidis.NewLuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
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

// createScript creates a session and keeps the user's index exact and
// bounded, in one atomic step: a cap enforced by a read and a separate
// write would let parallel logins through, and Redis runs one script at a
// time, whichever instance sends it.
//
//  0. If the user's fence moved since the login began (fence.go), nothing
//     is written: the login fails with ErrFenced.
//  1. Entries past the max age are dropped, with their keys: they are dead
//     (Lookup refuses them) but would otherwise hold memory outside the cap
//     until their idle TTL ran out.
//  2. Entries whose token hash is gone (idle-expired) are dropped.
//  3. The token hash is written with its TTL and indexed.
//  4. Beyond the cap, the least recently seen other sessions end (token,
//     data, index entry); ties go to the oldest created, then the smallest
//     id, so the choice is deterministic. The new session itself is never
//     chosen: a login always yields a working session.
//
// KEYS[1] token, KEYS[2] index, KEYS[3] fence. ARGV[1] id, ARGV[2] uid,
// ARGV[3] created, ARGV[4] seen, ARGV[5] user agent, ARGV[6] ttl ms,
// ARGV[7] max-age cutoff (unix ms; entries created before it are dead),
// ARGV[8] index ttl ms, ARGV[9] max sessions, ARGV[10] session key prefix,
// ARGV[11] data key suffix, ARGV[12] the fence read when the login began.
// Returns {ids of the sessions it ended for the cap, ids of live sessions it
// ended past the max age, ids of entries whose token had expired}, so that
// each gets its event (createReply).
//
// Its source is kept as well: a login that waits for replicas sends it
// itself, on a dedicated connection (replicas.go).
var createScript = rueidis.NewLuaScript(createScriptSrc)

var createScriptSrc = luaFenced + fmt.Sprintf(`
if fenced(KEYS[3], ARGV[12]) then
  return redis.error_reply('`+errFencedReply+`')
end
local id, prefix, dsuf = ARGV[1], ARGV[10], ARGV[11]
local function unlink(sid)
  redis.call('UNLINK', prefix .. sid, prefix .. sid .. dsuf)
  redis.call('ZREM', KEYS[2], sid)
end
local limit, aged, gone = {}, {}, {}
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[7])) do
  if sid ~= id then
    if redis.call('EXISTS', prefix .. sid) == 1 then
      aged[#aged + 1] = sid
    else
      gone[#gone + 1] = sid
    end
  end
  unlink(sid)
end
local others = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if sid ~= id then
    if redis.call('EXISTS', prefix .. sid) == 0 then
      gone[#gone + 1] = sid
      unlink(sid)
    else
      local f = redis.call('HMGET', prefix .. sid, %[1]q, %[2]q)
      others[#others + 1] = {sid, tonumber(f[1]) or 0, tonumber(f[2]) or 0}
    end
  end
end
redis.call('HSET', KEYS[1], %[3]q, ARGV[2], %[2]q, ARGV[3], %[1]q, ARGV[4], %[4]q, ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[3], id)
redis.call('PEXPIRE', KEYS[2], ARGV[8])
local over = #others + 1 - tonumber(ARGV[9])
if over > 0 then
  table.sort(others, function(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    if a[3] ~= b[3] then return a[3] < b[3] end
    return a[1] < b[1]
  end)
  for i = 1, over do
    unlink(others[i][1])
    limit[#limit + 1] = others[i][1]
  end
end
return {limit, aged, gone}
`, sessSeen, sessCreated, sessUID, sessUA)

// revokeAllScript ends every session in the user's index and raises the
// user's fence, so that no login or reload in flight undoes it.
//
// KEYS[1] index, KEYS[2] fence. ARGV[1] session key prefix, ARGV[2] data key
// suffix, ARGV[3] new fence value, ARGV[4] fence ttl ms.
// Returns {number of sessions that were still alive, every indexed id, the
// ids of those alive}.
var revokeAllScript = rueidis.NewLuaScript(`
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local live = {}
for _, id in ipairs(ids) do
  local k = ARGV[1] .. id
  if redis.call('UNLINK', k) == 1 then
    live[#live + 1] = id
  end
  redis.call('UNLINK', k .. ARGV[2])
end
redis.call('DEL', KEYS[1])
return {#live, ids, live}
`)

// putDataScript stores one data entry of a live session, with the session's
// remaining TTL, within the session's key count and byte budget.
//
// The budget counts key bytes plus value bytes of every entry, the entry
// being replaced at its new size. It is summed afresh on each put with
// HSTRLEN, which reads a value's length without copying the value into
// Lua: at most MaxDataKeys cheap calls, and no running total to keep
// consistent with HDEL, expiry or a failed write.
//
// KEYS[1] token, KEYS[2] data. ARGV[1] field, ARGV[2] value, ARGV[3] max
// keys, ARGV[4] max bytes.
// Returns 1 stored, 0 session gone, -1 data full, -2 over the byte budget.
var putDataScript = rueidis.NewLuaScript(`
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then
  return 0
end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[3]) and redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  return -1
end
local total = #ARGV[1] + #ARGV[2]
for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do
  if f ~= ARGV[1] then
    total = total + #f + redis.call('HSTRLEN', KEYS[2], f)
  end
end
if total > tonumber(ARGV[4]) then
  return -2
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
`)

// eraseScript raises an erasure fence and deletes the user's sessions,
// their data and the index, meta and the reload lock, in one atomic step
// bounded by the session cap. The generation meta pointed at is left to the
// caller, which deletes it in batches: nothing points at it any more.
// Returns {every indexed session id, the generations, the ids of the
// sessions that were alive}.
//
// KEYS[1] index, KEYS[2] fence, KEYS[3] meta, KEYS[4] lock. ARGV[1] session
// key prefix, ARGV[2] data key suffix, ARGV[3] new fence value, ARGV[4]
// fence ttl ms.
var eraseScript = rueidis.NewLuaScript(luaLayout + `
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local live = {}
for _, id in ipairs(ids) do
  if redis.call('UNLINK', ARGV[1] .. id) == 1 then
    live[#live + 1] = id
  end
  redis.call('UNLINK', ARGV[1] .. id .. ARGV[2])
end
local g = gens(KEYS[3])
redis.call('UNLINK', KEYS[1], KEYS[3], KEYS[4])
return {ids, g, live}
`)
