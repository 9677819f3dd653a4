package redisrepo

import (
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/profile"
)

// DefaultPrefix starts every key unless the options say otherwise.
const DefaultPrefix = "pc"

// Key layout (<gen> is a generation, see doc.go):
//
//	pc:{u:<uuid>}:meta                HASH   per section its generation (g:<section>), load time
//	                                         (l:<section>) and load duration (d:<section>); gen,
//	                                         renewed, loaded, counts (meta.go)
//	pc:{u:<uuid>}:<gen>:basic         HASH
//	pc:{u:<uuid>}:<gen>:interests     SET
//	pc:{u:<uuid>}:<gen>:orders        LIST   ids in display order; likewise invoices, inquiries
//	pc:{u:<uuid>}:<gen>:order:<id>    HASH   likewise invoice:<id>, inquiry:<id>
//	pc:{u:<uuid>}:lock                STRING reload lock owner
//	pc:{u:<uuid>}:lock:<section>      STRING a section's reload lock owner (issue 12)
//	pc:{u:<uuid>}:fence               STRING revocation fence (fence.go), short-lived
//	pc:{u:<uuid>}:sessions            ZSET   session id -> created (unix ms)
//	pc:{u:<uuid>}:s:<sid>             HASH   session token
//	pc:{u:<uuid>}:s:<sid>:data        HASH   per-session data
//
// The Lua scripts learn these names from luaLayout (scripts.go), which is
// generated from the constants below, so Go and Lua cannot drift apart.
const (
	keyMeta      = "meta"
	keyLock      = "lock"
	keyFence     = "fence"
	keySessions  = "sessions"
	keySession   = "s"
	keyData      = "data"
	keyBasic     = "basic"
	keyInterests = "interests"
)

// section is one list section of a profile: a list of ids plus one hash per
// item. Its list name doubles as its count field in meta.
type section struct {
	list string // list key suffix and meta count field
	item string // item hash key infix
}

var (
	secOrders    = section{list: "orders", item: "order"}
	secInvoices  = section{list: "invoices", item: "invoice"}
	secInquiries = section{list: "inquiries", item: "inquiry"}
	// sections is the fixed order of the list sections in Lua replies.
	sections = [...]section{secOrders, secInvoices, secInquiries}
)

// listSection is the profile.Section of sections[i].
func listSection(i int) profile.Section { return profile.SectionOrders + profile.Section(i) }

// parts is a set of profile sections, one bit each: what a walk of a
// generation covers (generation.go).
type parts uint8

const allParts parts = 1<<profile.NumSections - 1

func partOf(sec profile.Section) parts       { return 1 << sec }
func (p parts) has(sec profile.Section) bool { return p&partOf(sec) != 0 }

// keyspace builds every key. It is the only place that knows key names.
type keyspace struct {
	prefix string
}

func newKeyspace(prefix string) keyspace {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	// A brace in the prefix would move the cluster hash tag off {u:<uuid>}:
	// Redis hashes the first {...} of a key.
	if strings.ContainsAny(prefix, "{}") {
		panic(fmt.Sprintf("redisrepo: key prefix %q must not contain braces", prefix))
	}
	return keyspace{prefix: prefix}
}

// user is the start of every key of the user, "pc:{u:<uuid>}:", hash tag
// included.
func (k keyspace) user(id uuid.UUID) string { return k.userKey(id, "", "", "") }

// userKey is user(id) + a + b + c, built in one allocation: every request
// builds a few keys, and concatenating them piecewise was a fifth of the
// allocations of a hot authenticated request.
func (k keyspace) userKey(id uuid.UUID, a, b, c string) string {
	const tagOpen, tagClose = ":{u:", "}:"
	var hex [36]byte
	encodeUUID(&hex, id)
	var sb strings.Builder
	sb.Grow(len(k.prefix) + len(tagOpen) + len(hex) + len(tagClose) + len(a) + len(b) + len(c))
	sb.WriteString(k.prefix)
	sb.WriteString(tagOpen)
	sb.Write(hex[:])
	sb.WriteString(tagClose)
	sb.WriteString(a)
	sb.WriteString(b)
	sb.WriteString(c)
	return sb.String()
}

// encodeUUID writes id in its canonical form (uuid.UUID.String) to dst
// without allocating.
func encodeUUID(dst *[36]byte, id uuid.UUID) {
	const digits = "0123456789abcdef"
	j := 0
	for i, b := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst[j] = '-'
			j++
		}
		dst[j], dst[j+1] = digits[b>>4], digits[b&0x0f]
		j += 2
	}
}

func (k keyspace) meta(id uuid.UUID) string { return k.userKey(id, keyMeta, "", "") }
func (k keyspace) lock(id uuid.UUID) string { return k.userKey(id, keyLock, "", "") }

// sectionLock is the reload lock of one section (issue 12).
func (k keyspace) sectionLock(id uuid.UUID, sec profile.Section) string {
	return k.userKey(id, keyLock, ":", sec.String())
}
func (k keyspace) fence(id uuid.UUID) string    { return k.userKey(id, keyFence, "", "") }
func (k keyspace) sessions(id uuid.UUID) string { return k.userKey(id, keySessions, "", "") }

// sessionPrefix is what a session id is appended to; Lua gets it as an
// argument to build session keys from index members.
func (k keyspace) sessionPrefix(id uuid.UUID) string { return k.userKey(id, keySession+":", "", "") }

func (k keyspace) session(id uuid.UUID, sid string) string {
	return k.userKey(id, keySession+":", sid, "")
}

func (k keyspace) sessionData(id uuid.UUID, sid string) string {
	return k.userKey(id, keySession+":", sid, dataSuffix)
}

// dataSuffix turns a session key into its data key.
const dataSuffix = ":" + keyData

// gen returns the keys of one generation of the user's profile.
func (k keyspace) gen(id uuid.UUID, gen string) genKeys {
	return genKeys(k.userKey(id, gen, ":", ""))
}

// genKeys is "pc:{u:<uuid>}:<gen>:", the start of every key of a generation.
type genKeys string

func (g genKeys) basic() string         { return string(g) + keyBasic }
func (g genKeys) interests() string     { return string(g) + keyInterests }
func (g genKeys) list(s section) string { return string(g) + s.list }
func (g genKeys) item(s section, id string) string {
	return string(g) + s.item + ":" + id
}
