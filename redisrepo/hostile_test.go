package redisrepo_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// hostileStrings are what a backend or a client may send that a careless
// layout would mangle: invalid UTF-8, NUL, line breaks, key separators,
// hash-tag braces, Lua pattern characters, an empty string, a long one.
var hostileStrings = []string{
	"\xff\xfe\xfd", "a\x00b", "\xed\xa0\x80", "line\r\nbreak", "pc:{u:x}:meta", "}{", "%s%d.*[]^$",
	"", strings.Repeat("€", 20_000),
}

func hostileProfile(uid uuid.UUID) *profile.Profile {
	p := richProfile(uid, "H", len(hostileStrings), len(hostileStrings), len(hostileStrings))
	p.Interests = nil
	for i, s := range hostileStrings {
		p.Interests = append(p.Interests, "i"+s)
		o := &p.Orders[i]
		o.ID = "o" + s // ids become key suffixes
		o.Number, o.Status, o.Currency, o.ShippingCity = s, s, s, s
		o.Total, o.ItemCount = profile.Money(-1<<63+int64(i)), -i
		v := &p.Invoices[i]
		v.ID, v.Number, v.Currency = "v"+s, s, s
		q := &p.Inquiries[i]
		q.ID, q.Description, q.SubmitterEmail, q.SubmitterName = "q"+s, s, s, s
	}
	b := &p.Basic
	b.FirstName, b.LastName, b.Email, b.Phone = hostileStrings[0], hostileStrings[1], hostileStrings[2], hostileStrings[3]
	b.AddressLine, b.PostalCode, b.City, b.Country = hostileStrings[4], hostileStrings[5], hostileStrings[6], hostileStrings[7]
	b.Created = time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)
	p.Orders[0].Date = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	return p
}

// Hostile strings and extreme numbers round-trip exactly through Redis, on
// both paths of Read, on a single server and on a cluster.
func TestHostileValuesRoundTrip(t *testing.T) { onTargets(t, testHostileValuesRoundTrip) }

func testHostileValuesRoundTrip(t *testing.T, e env) {
	s := newProfileStore(e.client, redisrepo.ProfileOptions{})
	uid := uuid.New()
	p := hostileProfile(uid)
	mustSave(t, s, p)
	n := len(hostileStrings)
	q := profile.Query{Basic: true, Interests: true, Orders: page(0, n), Invoices: page(0, n), Inquiries: page(0, n)}
	want := viewOf(p, q)
	for _, path := range readPaths(s) {
		v, err := path.read(context.Background(), uid, q)
		if err != nil {
			t.Fatalf("%s: %v", path.name, err)
		}
		if !reflect.DeepEqual(v, want) {
			t.Errorf("%s: got\n%+v\nwant\n%+v", path.name, v, want)
		}
	}
}

// A date RFC 3339 cannot hold is refused at Save, with nothing written,
// instead of being stored and then failing every read.
func TestSaveRejectsUnstorableDates(t *testing.T) { onTargets(t, testSaveRejectsUnstorableDates) }

func testSaveRejectsUnstorableDates(t *testing.T, e env) {
	s := newProfileStore(e.client, redisrepo.ProfileOptions{})
	for _, when := range []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 12, 31, 0, 0, 0, 0, time.UTC),
	} {
		uid := uuid.New()
		p := alice(uid)
		p.Orders[7].Date = when
		err := s.Save(context.Background(), p, "")
		if err == nil || !strings.Contains(err.Error(), "order 7 date") {
			t.Errorf("Save with an order dated %v: err = %v, want one naming order 7", when.Year(), err)
		}
		if keys := e.userKeys(t, uid); len(keys) != 0 {
			t.Errorf("a refused save left keys %v", keys)
		}
	}
}

// Session data: values are bytes and come back exactly; keys and values
// over the limits are refused by the store itself, whatever the web layer
// lets through.
func TestSessionDataHostile(t *testing.T) { onTargets(t, testSessionDataHostile) }

func testSessionDataHostile(t *testing.T, e env) {
	ctx := context.Background()
	ts := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{})
	uid := uuid.New()
	ua := "agent \xff\x00 " + strings.Repeat("ü", 100)
	if err := ts.Create(ctx, profile.Session{ID: "s1", UserID: uid, UserAgent: ua}, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"", "\x00", "\xff\xfe", strings.Repeat("\x00\xff", profile.MaxDataValueBytes/2)} {
		if err := ts.PutData(ctx, uid, "s1", "k", []byte(v)); err != nil {
			t.Fatalf("PutData(%d bytes): %v", len(v), err)
		}
		got, err := ts.GetData(ctx, uid, "s1", "k")
		if err != nil || string(got) != v {
			t.Errorf("GetData after putting %d bytes = %d bytes, %v", len(v), len(got), err)
		}
	}
	for _, tt := range []struct {
		name, key string
		value     int
	}{
		{"empty key", "", 1},
		{"key one byte too long", strings.Repeat("k", profile.MaxDataKeyBytes+1), 1},
		{"value one byte too long", "k", profile.MaxDataValueBytes + 1},
	} {
		err := ts.PutData(ctx, uid, "s1", tt.key, make([]byte, tt.value))
		if err == nil || errors.Is(err, profile.ErrUnavailable) {
			t.Errorf("%s: PutData = %v, want a plain refusal", tt.name, err)
		}
	}
	if err := ts.PutData(ctx, uid, "s1", strings.Repeat("k", profile.MaxDataKeyBytes), nil); err != nil {
		t.Errorf("a key of exactly %d bytes: %v", profile.MaxDataKeyBytes, err)
	}
	list, err := ts.List(ctx, uid)
	if err != nil || len(list) != 1 || list[0].UserAgent != ua {
		t.Errorf("List = %+v, %v; want the session with its user agent byte for byte", list, err)
	}
}
