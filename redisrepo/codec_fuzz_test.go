package redisrepo

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/profile"
)

// The Redis hash <-> struct mapping meets whatever Redis holds: data from an
// older version, an operator's HSET, a half-expired generation. Decoding
// must give a value or an error, never a panic, and the result must be
// canonical: encoding it and decoding again changes nothing. The seed
// corpora run in every `go test`; `go test -fuzz FuzzDecodeHash ./redisrepo`
// explores further.

// fieldsOf parses fuzz input as a hash: lines of field=value, with the
// field names of our own layout likely, so that the fuzzer reaches the
// value parsers instead of stopping at "field missing".
func fieldsOf(data []byte) map[string]string {
	m := map[string]string{}
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		k, v, _ := bytes.Cut(line, []byte{'='})
		m[string(k)] = string(v)
	}
	return m
}

func hashSeed(pairs []string) []byte {
	var b []byte
	for i := 0; i+1 < len(pairs); i += 2 {
		b = append(b, pairs[i]+"="+pairs[i+1]+"\n"...)
	}
	return bytes.TrimSuffix(b, []byte{'\n'})
}

// canonical checks decode -> encode -> decode for one record type: the
// second decode must succeed and equal the first, and encoding it again
// must give the same fields.
func canonical[T any](t *testing.T, name string, m map[string]string, decode func(map[string]string) (T, error), encode func(T) []string) {
	t.Helper()
	v, err := decode(m)
	if err != nil {
		if !errors.Is(err, errCorrupt) {
			t.Fatalf("%s: decode error %v does not wrap errCorrupt", name, err)
		}
		return
	}
	enc := encode(v)
	v2, err := decode(toMap(enc))
	if err != nil {
		t.Fatalf("%s: decode of re-encoded %q: %v", name, enc, err)
	}
	if enc2 := encode(v2); !slices.Equal(enc, enc2) {
		t.Fatalf("%s: not canonical:\nfirst  %q\nsecond %q", name, enc, enc2)
	}
}

func FuzzDecodeHash(f *testing.F) {
	when := time.Date(2026, 11, 21, 9, 30, 0, 123_000_000, time.UTC)
	for _, pairs := range [][]string{
		encodeBasic(profile.Basic{ID: uuid.New(), FirstName: "Zoë", Created: when}),
		encodeOrder(profile.Order{ID: "o1", Date: when, Total: -1, ItemCount: 3}),
		encodeInvoice(profile.Invoice{ID: "i1", Date: when, Amount: 1 << 62, Paid: true}),
		encodeInquiry(profile.Inquiry{ID: "q1", Submitted: when, Description: "\xff\xfe"}),
		meta{gen: "g", renewed: 1, counts: [3]int{25, 6, 3}, interests: 4}.pairs(),
		{fTotal, "9223372036854775808"},      // one past MaxInt64
		{fTotal, "-9223372036854775809"},     // one below MinInt64
		{fItems, "+5"},                       // ParseInt takes a sign
		{fDate, "2026-11-21T09:30:00+14:00"}, // an offset, stored as UTC
		{fDate, "10000-01-01T00:00:00Z"},     // a year RFC 3339 cannot hold
		{fID, "urn:uuid:7d4f6a0e-3b1c-4f7e-9a2b-5c8d1e0f2a3b"},
		{fMarketing, "true"},
		{metaGen, "", "orders", "-1"},
	} {
		f.Add(hashSeed(pairs))
	}
	f.Add([]byte{})
	f.Add([]byte("=\n=\n\x00=\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := fieldsOf(data)
		canonical(t, "basic", m, decodeBasic, encodeBasic)
		canonical(t, "order", m, decodeOrder, encodeOrder)
		canonical(t, "invoice", m, decodeInvoice, encodeInvoice)
		canonical(t, "inquiry", m, decodeInquiry, encodeInquiry)
		if mt, found, err := decodeMeta(m); err == nil && found {
			mt2, _, err := decodeMeta(toMap(mt.pairs()))
			if err != nil || mt2 != mt {
				t.Fatalf("meta not canonical: %+v -> %+v, %v", mt, mt2, err)
			}
		} else if err != nil && !errors.Is(err, errCorrupt) {
			t.Fatalf("meta: decode error %v does not wrap errCorrupt", err)
		}
		// The token hash: a live session or not-found, never a panic.
		ts := &TokenStore{indexTTL: time.Hour, now: time.Now}
		if _, err := ts.decode(uuid.New(), "sid", m); err != nil && !errors.Is(err, profile.ErrNotFound) {
			t.Fatalf("session decode error %v does not wrap ErrNotFound", err)
		}
	})
}

// FuzzCodecRoundTrip: every value the domain types can hold in strings
// (any bytes, invalid UTF-8 and NUL included), numbers (the whole int64
// range) and times (UTC, years 0000..9999) comes back exactly; a time
// outside that range is refused by Save's check, never stored.
func FuzzCodecRoundTrip(f *testing.F) {
	f.Add("Zoë", "Ångström 🏠", "東京", int64(0), int64(0), int64(1), true)
	f.Add("", "", "", int64(-1), int64(-1), int64(-1<<63), false)
	f.Add("\xff\xfe\x00", "a\r\nb", strings.Repeat("x", 1000), int64(1<<63-1), int64(253402300799), int64(999_999_999), true)
	f.Add("\xed\xa0\x80", "=", "\n", int64(-62135596800), int64(-62135596800), int64(1), false) // a UTF-16 surrogate in UTF-8
	f.Add("x", "y", "z", int64(0), int64(253402300800), int64(0), false)                        // year 10000
	f.Add("x", "y", "z", int64(0), int64(-62167219201), int64(0), false)                        // year -1
	f.Fuzz(func(t *testing.T, s1, s2, s3 string, n int64, secs, nanos int64, b bool) {
		when := time.Unix(secs, nanos%1e9).UTC()
		if err := checkTime("t", when); err != nil {
			p := &profile.Profile{Basic: profile.Basic{ID: uuid.New(), Created: when}}
			if err := checkProfile(p); err == nil {
				t.Fatalf("checkProfile accepted a profile created %v", when)
			}
			return
		}
		basic := profile.Basic{ID: uuid.NewSHA1(uuid.Nil, []byte(s1)), FirstName: s1, LastName: s2, Email: s3,
			Phone: s1, AddressLine: s2, PostalCode: s3, City: s1, Country: s2, MarketingPermission: b, Created: when}
		// Item ids live in the key name, not in the hash: decode leaves them empty.
		order := profile.Order{Number: s2, Date: when, Status: s3, Total: profile.Money(n), Currency: s1,
			ItemCount: int(n), ShippingCity: s2}
		invoice := profile.Invoice{Number: s2, Date: when, Amount: profile.Money(n), Currency: s3, Paid: b}
		inquiry := profile.Inquiry{Closed: b, Description: s2, Submitted: when, SubmitterEmail: s3, SubmitterName: s1}
		roundTrip(t, basic, encodeBasic, decodeBasic)
		roundTrip(t, order, encodeOrder, decodeOrder)
		roundTrip(t, invoice, encodeInvoice, decodeInvoice)
		roundTrip(t, inquiry, encodeInquiry, decodeInquiry)
	})
}

func roundTrip[T any](t *testing.T, v T, encode func(T) []string, decode func(map[string]string) (T, error)) {
	t.Helper()
	got, err := decode(toMap(encode(v)))
	if err != nil {
		t.Fatalf("round trip of %+v: %v", v, err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("round trip:\ngot  %+v\nwant %+v", got, v)
	}
}
