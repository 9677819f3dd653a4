package redisrepo

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/profile"
)

func toMap(pairs []string) map[string]string {
	m := make(map[string]string, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return m
}

func TestCodecRoundTrip(t *testing.T) {
	when := time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	b := profile.Basic{ID: uuid.New(), FirstName: "Zoë", LastName: "Ångström", Email: "z@example.com",
		Phone: "+46", AddressLine: "Gata 1 🏠", PostalCode: "111", City: "東京", Country: "SE",
		MarketingPermission: true, Created: when}
	o := profile.Order{ID: "o1", Number: "N1", Date: when, Status: "shipped", Total: -42, Currency: "EUR", ItemCount: 3, ShippingCity: "Malmö"}
	i := profile.Invoice{ID: "i1", Number: "I1", Date: when, Amount: 1 << 40, Currency: "SEK", Paid: true}
	q := profile.Inquiry{ID: "q1", Closed: true, Description: "long text 📦", Submitted: when, SubmitterEmail: "e", SubmitterName: "n"}

	if got, err := decodeBasic(toMap(encodeBasic(b))); err != nil || !reflect.DeepEqual(got, b) {
		t.Errorf("basic round trip = %+v, %v; want %+v", got, err, b)
	}
	// Item hashes do not hold the id (it is in the key): the reader passes
	// it in.
	if got, err := orderFrom(o.ID, &decoder{m: toMap(encodeOrder(o))}); err != nil || !reflect.DeepEqual(got, o) {
		t.Errorf("order round trip = %+v, %v; want %+v", got, err, o)
	}
	if got, err := invoiceFrom(i.ID, &decoder{m: toMap(encodeInvoice(i))}); err != nil || !reflect.DeepEqual(got, i) {
		t.Errorf("invoice round trip = %+v, %v; want %+v", got, err, i)
	}
	if got, err := inquiryFrom(q.ID, &decoder{m: toMap(encodeInquiry(q))}); err != nil || !reflect.DeepEqual(got, q) {
		t.Errorf("inquiry round trip = %+v, %v; want %+v", got, err, q)
	}
	m := fullMeta("abc")
	if got, found, err := decodeMeta(toMap(m.pairs())); err != nil || !found || got != m {
		t.Errorf("meta round trip = %+v, %v, %v; want %+v", got, found, err, m)
	}
}

func TestDecodeCorrupt(t *testing.T) {
	order := toMap(encodeOrder(profile.Order{ID: "o1", Date: time.Unix(0, 0)}))
	with := func(field, v string) map[string]string {
		m := map[string]string{}
		for k, val := range order {
			m[k] = val
		}
		if v == "<delete>" {
			delete(m, field)
		} else {
			m[field] = v
		}
		return m
	}
	tests := []struct {
		name string
		h    map[string]string
	}{
		{"total not a number", with(fTotal, "12.5")},
		{"items empty", with(fItems, "")},
		{"date garbage", with(fDate, "yesterday")},
		{"field missing", with(fStatus, "<delete>")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeOrder(tt.h); !errors.Is(err, errCorrupt) {
				t.Errorf("decodeOrder error = %v, want errCorrupt", err)
			}
		})
	}
	if _, err := decodeInvoice(toMap([]string{fPaid, "yes"})); !errors.Is(err, errCorrupt) {
		t.Errorf("decodeInvoice(paid=yes) error = %v, want errCorrupt", err)
	}
	if _, err := decodeBasic(toMap([]string{fID, "not-a-uuid"})); !errors.Is(err, errCorrupt) {
		t.Errorf("decodeBasic(bad id) error = %v, want errCorrupt", err)
	}
	if _, found, err := decodeMeta(map[string]string{}); found || err != nil {
		t.Errorf("decodeMeta(empty) = found %v, %v; want not found, nil", found, err)
	}
	bad := toMap(meta{gen: "g", counts: [3]int{-1, 0, 0}}.pairs())
	if _, _, err := decodeMeta(bad); !errors.Is(err, errCorrupt) {
		t.Errorf("decodeMeta(negative count) error = %v, want errCorrupt", err)
	}
}

// The read path asks HMGET for exactly the fields each encoder writes, in
// the order the decoders read them.
func TestFieldListsMatchEncoders(t *testing.T) {
	when := time.Unix(0, 0)
	tests := []struct {
		name   string
		pairs  []string
		fields []string
	}{
		{"basic", encodeBasic(profile.Basic{Created: when}), basicFields},
		{"order", encodeOrder(profile.Order{Date: when}), orderFields},
		{"invoice", encodeInvoice(profile.Invoice{Date: when}), invoiceFields},
		{"inquiry", encodeInquiry(profile.Inquiry{Submitted: when}), inquiryFields},
		{"meta", fullMeta("g").pairs(), metaFields},
	}
	for _, tt := range tests {
		var written []string
		for i := 0; i < len(tt.pairs); i += 2 {
			written = append(written, tt.pairs[i])
		}
		if !reflect.DeepEqual(written, tt.fields) {
			t.Errorf("%s: encoder writes %q, read path asks for %q", tt.name, written, tt.fields)
		}
	}
}

// fullMeta is a meta with every field set, section durations included.
func fullMeta(gen string) meta {
	m := meta{gen: gen, renewed: 17, loaded: 16, counts: [3]int{1, 2, 3}, interests: 4}
	for s := range profile.NumSections {
		m.gens[s], m.loads[s], m.took[s] = gen+s.String(), 16+int64(s), 1+int64(s)
	}
	return m
}
