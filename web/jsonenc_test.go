package web

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/profile"
)

// basicJSON and orderJSON are the API's shapes of basic data and of an
// order, encoded by encoding/json: the reference that the hand-written
// encoders in jsonenc.go must match byte for byte.

type basicJSON struct {
	ID                  string `json:"id"`
	FirstName           string `json:"first_name"`
	LastName            string `json:"last_name"`
	Email               string `json:"email"`
	Phone               string `json:"phone"`
	AddressLine         string `json:"address_line"`
	PostalCode          string `json:"postal_code"`
	City                string `json:"city"`
	Country             string `json:"country"`
	MarketingPermission bool   `json:"marketing_permission"`
	Created             string `json:"created"`
}

type orderJSON struct {
	ID           string `json:"id"`
	Number       string `json:"number"`
	Date         string `json:"date"`
	Status       string `json:"status"`
	Total        string `json:"total"` // decimal string: floats would round
	Currency     string `json:"currency"`
	ItemCount    int    `json:"item_count"`
	ShippingCity string `json:"shipping_city"`
}

func toBasicJSON(b profile.Basic) basicJSON {
	return basicJSON{
		ID:                  b.ID.String(),
		FirstName:           b.FirstName,
		LastName:            b.LastName,
		Email:               b.Email,
		Phone:               b.Phone,
		AddressLine:         b.AddressLine,
		PostalCode:          b.PostalCode,
		City:                b.City,
		Country:             b.Country,
		MarketingPermission: b.MarketingPermission,
		Created:             rfc3339(b.Created),
	}
}

func toOrderJSON(o profile.Order) orderJSON {
	return orderJSON{
		ID:           o.ID,
		Number:       o.Number,
		Date:         rfc3339(o.Date),
		Status:       o.Status,
		Total:        formatAmount(o.Total),
		Currency:     o.Currency,
		ItemCount:    o.ItemCount,
		ShippingCity: o.ShippingCity,
	}
}

// reference is what c.JSON wrote: encoding/json, HTML-safe.
func reference(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// awkward strings: every class of byte that JSON or HTML escaping treats
// specially.
var awkward = []string{
	"", "plain", "Zoë Ångström", `quote " backslash \ slash /`, "<script>&amp;</script>",
	"\x00\x01\x07\b\f\n\r\t\x1f\x7f", "line\u2028sep\u2029para", "bad \xff byte", "cut \xe2\x82",
	"\xed\xa0\x80 surrogate", "emoji 😀 and 中文", "\u00a0nbsp", strings.Repeat("é<", 50),
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range awkward {
		if got, want := string(appendJSONString(nil, s)), reference(t, s); got != want {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range awkward {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(appendJSONString([]byte("x"), s)), "x"+reference(t, s); got != want {
			t.Fatalf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}

func FuzzBasicJSON(f *testing.F) {
	f.Add([]byte("0123456789abcdef"), "Zoë", "<&>", "zoe@example.com", "+49 30", "Straße 1", "10963", "Berlin", "DE", true, int64(1767225600), int64(0))
	f.Add([]byte{}, "\xff", "\u2028", "", "", "", "", "", "", false, int64(-62135596800), int64(999999999))
	f.Fuzz(func(t *testing.T, id []byte, first, last, email, phone, addr, postal, city, country string, marketing bool, sec, nsec int64) {
		b := profile.Basic{
			FirstName: first, LastName: last, Email: email, Phone: phone, AddressLine: addr,
			PostalCode: postal, City: city, Country: country, MarketingPermission: marketing,
			// Years 0 to 9999: what RFC 3339 can say and what the backend sends.
			Created: time.Unix(sec%253402300800, nsec%1e9).In(time.FixedZone("", int(sec%50400))),
		}
		copy(b.ID[:], id)
		if got, want := string(appendBasicJSON(nil, b)), reference(t, toBasicJSON(b)); got != want {
			t.Fatalf("appendBasicJSON = %s\nwant %s", got, want)
		}
	})
}

func TestBasicJSON(t *testing.T) {
	for _, b := range []profile.Basic{
		{},
		{ID: uuid.MustParse("4e04bb0d-36ae-54de-be48-d20430d7aea8"), FirstName: "Alice Zoë", LastName: "Ångström",
			Email: "alice@example.com", MarketingPermission: true, Created: time.Date(2023, 11, 1, 9, 30, 0, 0, time.UTC)},
		{FirstName: awkward[3], LastName: awkward[4], Email: awkward[5], Phone: awkward[6], AddressLine: awkward[7],
			PostalCode: awkward[8], City: awkward[9], Country: awkward[10],
			Created: time.Date(2026, 3, 29, 2, 30, 0, 123, time.FixedZone("CEST", 7200))},
	} {
		if got, want := string(appendBasicJSON(nil, b)), reference(t, toBasicJSON(b)); got != want {
			t.Errorf("appendBasicJSON = %s\nwant %s", got, want)
		}
	}
}

func TestOrderPageJSON(t *testing.T) {
	orders := []profile.Order{
		{ID: "1000025", Number: "ORD-1-000025", Date: time.Date(2026, 10, 1, 9, 30, 0, 0, time.UTC), Status: "placed",
			Total: 31321, Currency: "CHF", ItemCount: 3, ShippingCity: "København"},
		{ID: awkward[4], Number: awkward[5], Status: awkward[6], Total: -5, Currency: awkward[7], ItemCount: -1, ShippingCity: awkward[8]},
		{Total: math.MinInt64, ItemCount: math.MaxInt},
		{Total: math.MaxInt64, Date: time.Date(9999, 12, 31, 23, 59, 59, 999, time.FixedZone("", -3600))},
	}
	for _, tt := range []struct {
		name string
		s    profile.Slice[profile.Order]
		p    profile.Page
	}{
		{"empty", profile.Slice[profile.Order]{}, profile.Page{Offset: 40, Limit: 20}},
		{"one", profile.Slice[profile.Order]{Items: orders[:1], Total: 25}, profile.Page{Offset: 0, Limit: 1}},
		{"awkward", profile.Slice[profile.Order]{Items: orders, Total: 10000}, profile.Page{Offset: 5000, Limit: 20}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := string(appendOrderPageJSON(nil, tt.s, tt.p))
			if want := reference(t, toPageJSON(tt.s, tt.p, toOrderJSON)); got != want {
				t.Errorf("appendOrderPageJSON = %s\nwant %s", got, want)
			}
		})
	}
}

func FuzzOrderJSON(f *testing.F) {
	f.Add("1", "ORD-1", int64(1767225600), "placed", int64(14990), "EUR", 3, "Köln")
	f.Add("\xff", "<>", int64(-1), "\u2029", int64(math.MinInt64), "\x00", -7, "\\\"")
	f.Fuzz(func(t *testing.T, id, number string, sec int64, status string, total int64, currency string, items int, city string) {
		o := profile.Order{ID: id, Number: number, Date: time.Unix(sec%253402300800, 0).UTC(), Status: status,
			Total: profile.Money(total), Currency: currency, ItemCount: items, ShippingCity: city}
		if got, want := string(appendOrderJSON(nil, o)), reference(t, toOrderJSON(o)); got != want {
			t.Fatalf("appendOrderJSON = %s\nwant %s", got, want)
		}
	})
}
