package web

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/profile"
)

// FuzzParsePage: any ?offset= and ?limit= either parse to exactly the
// decimal numbers given, within range (no clamping, no wrap-around), or are
// a 400; never a panic. The seed corpus runs in every `go test`.
func FuzzParsePage(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""}, {"0", "1"}, {"20", "100"}, {"-1", "20"}, {"0", "0"}, {"0", "101"}, {"+5", "5"}, {" 5", "5"},
		{"1e3", "10"}, {"0x10", "10"}, {"2147483647", "100"}, {"2147483648", "1"}, {"99999999999999999999", "1"},
		{"9223372036854775808", "1"}, {"007", "010"}, {"٣", "5"}, {"5\x00", "5"}, {"\xff", "\xfe"}, {"1_000", "1"},
	} {
		f.Add(s[0], s[1])
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, offset, limit string) {
		q := url.Values{}
		if offset != "" {
			q.Set("offset", offset)
		}
		if limit != "" {
			q.Set("limit", limit)
		}
		req := httptest.NewRequest(http.MethodGet, "/api/me/orders?"+q.Encode(), nil)
		c := e.NewContext(req, httptest.NewRecorder())
		p, err := parsePage(c)
		if err != nil {
			var he *echo.HTTPError
			if !errors.As(err, &he) || he.Code != http.StatusBadRequest {
				t.Fatalf("offset %q limit %q: error %v, want a 400", offset, limit, err)
			}
			return
		}
		if err := p.Validate(); err != nil || p.Offset > maxOffset {
			t.Fatalf("offset %q limit %q: accepted out-of-range page %+v", offset, limit, p)
		}
		for _, v := range []struct {
			in   string
			got  int
			dflt int
		}{{offset, p.Offset, 0}, {limit, p.Limit, profile.DefaultLimit}} {
			if v.in == "" {
				if v.got != v.dflt {
					t.Fatalf("absent parameter gave %d, want the default %d", v.got, v.dflt)
				}
				continue
			}
			if n, err := strconv.ParseUint(v.in, 10, 64); err != nil || n != uint64(v.got) {
				t.Fatalf("parameter %q accepted as %d", v.in, v.got)
			}
		}
	})
}
