package redisrepo

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestKeysShareOneHashTag(t *testing.T) {
	uid := uuid.MustParse("7d4f6a0e-3b1c-4f7e-9a2b-5c8d1e0f2a3b")
	for _, prefix := range []string{"", "pc", "staging:pc"} {
		k := newKeyspace(prefix)
		g := k.gen(uid, "k3x9q2mz")
		keys := map[string]string{
			"meta":         k.meta(uid),
			"lock":         k.lock(uid),
			"sessions":     k.sessions(uid),
			"session":      k.session(uid, "c2Vzc2lvbg"),
			"session data": k.sessionData(uid, "c2Vzc2lvbg"),
			"basic":        g.basic(),
			"interests":    g.interests(),
			"orders":       g.list(secOrders),
			// An id with braces must not move the tag: Redis hashes the first {...}.
			"order":     g.item(secOrders, "{evil}"),
			"invoices":  g.list(secInvoices),
			"invoice":   g.item(secInvoices, "INV-1"),
			"inquiries": g.list(secInquiries),
			"inquiry":   g.item(secInquiries, "Q-1"),
		}
		want := "u:" + uid.String()
		wantSlot := slot(k.meta(uid))
		for name, key := range keys {
			if got := hashTag(key); got != want {
				t.Errorf("prefix %q: %s key %q has hash tag %q, want %q", prefix, name, key, got, want)
			}
			if got := slot(key); got != wantSlot {
				t.Errorf("prefix %q: %s key %q is in slot %d, want %d", prefix, name, key, got, wantSlot)
			}
			wantPrefix := prefix
			if wantPrefix == "" {
				wantPrefix = DefaultPrefix
			}
			if !strings.HasPrefix(key, wantPrefix+":{u:") {
				t.Errorf("prefix %q: %s key %q does not start with %q", prefix, name, key, wantPrefix+":{u:")
			}
		}
	}
}

func TestKeyLayout(t *testing.T) {
	uid := uuid.MustParse("7d4f6a0e-3b1c-4f7e-9a2b-5c8d1e0f2a3b")
	k := newKeyspace("")
	g := k.gen(uid, "gen1")
	const u = "pc:{u:7d4f6a0e-3b1c-4f7e-9a2b-5c8d1e0f2a3b}:"
	tests := []struct{ got, want string }{
		{k.meta(uid), u + "meta"},
		{k.lock(uid), u + "lock"},
		{k.sessions(uid), u + "sessions"},
		{k.session(uid, "abc"), u + "s:abc"},
		{k.sessionData(uid, "abc"), u + "s:abc:data"},
		{g.basic(), u + "gen1:basic"},
		{g.interests(), u + "gen1:interests"},
		{g.list(secOrders), u + "gen1:orders"},
		{g.item(secOrders, "o1"), u + "gen1:order:o1"},
		{g.list(secInvoices), u + "gen1:invoices"},
		{g.item(secInvoices, "i1"), u + "gen1:invoice:i1"},
		{g.list(secInquiries), u + "gen1:inquiries"},
		{g.item(secInquiries, "q1"), u + "gen1:inquiry:q1"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("key %q, want %q", tt.got, tt.want)
		}
	}
}

func TestPrefixWithBracesPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("newKeyspace(\"a{b}\") did not panic")
		}
	}()
	newKeyspace("a{b}")
}

func TestNewGen(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		g := newGen()
		if len(g) != 8 || strings.Trim(g, genAlphabet) != "" {
			t.Fatalf("newGen() = %q, want 8 base36 characters", g)
		}
		if seen[g] {
			t.Fatalf("newGen() repeated %q within 1000 calls", g)
		}
		seen[g] = true
	}
}

// hashTag is what Redis Cluster hashes: the content of the first {...}
// when it is not empty, else the whole key.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}

// slot is Redis Cluster's key slot: CRC16-XMODEM of the hash tag mod 16384.
func slot(key string) uint16 {
	var crc uint16
	for _, b := range []byte(hashTag(key)) {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}

func TestSlotMatchesRedis(t *testing.T) {
	// Reference values from `redis-cli cluster keyslot` on a cluster node.
	tests := []struct {
		key  string
		want uint16
	}{
		{"user:{42}:basic", 8000},
		{"user:{43}:basic", 3937},
		{"foo", 12182},
		{"123456789", 12739},
	}
	for _, tt := range tests {
		if got := slot(tt.key); got != tt.want {
			t.Errorf("slot(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
}

func TestEncodeUUID(t *testing.T) {
	for _, id := range []uuid.UUID{uuid.Nil, uuid.Max, uuid.New(), uuid.MustParse("7d4f6a0e-3b1c-4f7e-9a2b-5c8d1e0f2a3b")} {
		var got [36]byte
		encodeUUID(&got, id)
		if string(got[:]) != id.String() {
			t.Errorf("encodeUUID = %s, want %s", got, id)
		}
	}
}
