package crm_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/crm"
	"github.com/profilecache/profilecache/internal/crmtest"
	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

var (
	zoeID = uuid.MustParse("11111111-1111-4111-8111-111111111111")
	day   = time.Date(2026, time.January, 2, 10, 30, 0, 0, time.UTC)
)

const (
	zoeEmail    = "zoe@example.com"
	zoePassword = "zoe-secret"
)

// zoe has non-ASCII text everywhere text can be.
func zoe() *profile.Profile {
	p := &profile.Profile{
		Basic: profile.Basic{
			ID: zoeID, FirstName: "Zoë", LastName: "Ångström", Email: zoeEmail,
			Phone: "+49 30 1234567", AddressLine: "Großbeerenstraße 1", PostalCode: "10963",
			City: "Berlin", Country: "DE", MarketingPermission: true, Created: day,
		},
		Interests: []string{"cycling", "jazz", "küche", "日本語"},
	}
	for i := range 25 {
		p.Orders = append(p.Orders, profile.Order{
			ID: fmt.Sprintf("o-%d", 25-i), Number: fmt.Sprintf("ORD-%04d", 25-i), Date: day.AddDate(0, 0, -i),
			Status: "zugestellt", Total: profile.Money(14990 + i), Currency: "EUR", ItemCount: i % 4, ShippingCity: "Köln",
		})
	}
	for i := range 6 {
		p.Invoices = append(p.Invoices, profile.Invoice{
			ID: fmt.Sprintf("i-%d", i), Number: fmt.Sprintf("INV-%04d", i), Date: day, Amount: 5005, Currency: "SEK", Paid: i%2 == 0,
		})
	}
	for i := range 3 {
		p.Inquiries = append(p.Inquiries, profile.Inquiry{
			ID: fmt.Sprintf("q-%d", i), Description: "Wo bleibt meine Bestellung? 🚚", Submitted: day,
			SubmitterEmail: zoeEmail, SubmitterName: "Zoë Ångström", Closed: i == 0,
		})
	}
	return p
}

// calls records what the client reported through its hooks.
type calls struct {
	mu       sync.Mutex
	outcomes map[string][]string // endpoint -> outcomes in order
	retries  map[string]int
}

func newClient(t *testing.T, c *crmtest.CRM, cfg crm.Config) (*crm.Client, *calls) {
	t.Helper()
	rec := &calls{outcomes: map[string][]string{}, retries: map[string]int{}}
	cfg.BaseURL = c.URL
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil)) // retries are logged at Warn
	if cfg.BaseBackoff == 0 {
		cfg.BaseBackoff = time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 5 * time.Millisecond
	}
	cfg.OnRequest = func(endpoint, outcome string, _ time.Duration) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		rec.outcomes[endpoint] = append(rec.outcomes[endpoint], outcome)
	}
	cfg.OnRetry = func(endpoint string) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		rec.retries[endpoint]++
	}
	cl, err := crm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl, rec
}

func (c *calls) get(endpoint string) ([]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.outcomes[endpoint]...), c.retries[endpoint]
}

// The whole path: login through the real Service, profile saved in a real
// redis-server, read back equal to what the CRM holds.
func TestLoginAndReadThroughService(t *testing.T) {
	c := crmtest.New(t)
	c.RequireToken("crm-token")
	want := zoe()
	c.Add(zoeEmail, zoePassword, want)
	cl, _ := newClient(t, c, crm.Config{Token: "crm-token"})
	store := redisrepo.NewProfileStore(redistest.New(t), redisrepo.ProfileOptions{})
	svc := profile.NewService(cl, store, store, profile.Options{})
	ctx := context.Background()

	if _, _, err := svc.Login(ctx, zoeEmail, "wrong"); !errors.Is(err, profile.ErrInvalidCredentials) {
		t.Fatalf("wrong password: err=%v, want ErrInvalidCredentials", err)
	}
	id, _, err := svc.Login(ctx, "ZOE@example.com", zoePassword)
	if err != nil {
		t.Fatal(err)
	}
	if id != zoeID {
		t.Fatalf("login id=%s, want %s", id, zoeID)
	}
	all := &profile.Page{Offset: 0, Limit: 100}
	v, err := svc.Read(ctx, id, profile.Query{Basic: true, Interests: true, Orders: all, Invoices: all, Inquiries: all})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v.Basic, want.Basic) {
		t.Errorf("basic=%+v, want %+v", v.Basic, want.Basic)
	}
	if got := strings.Join(sorted(v.Interests), ","); got != strings.Join(sorted(want.Interests), ",") {
		t.Errorf("interests=%s, want %v", got, want.Interests)
	}
	if !reflect.DeepEqual(v.Orders.Items, want.Orders) || v.Orders.Total != 25 {
		t.Errorf("orders differ (total %d): got %+v", v.Orders.Total, v.Orders.Items[:2])
	}
	if !reflect.DeepEqual(v.Invoices.Items, want.Invoices) {
		t.Errorf("invoices=%+v, want %+v", v.Invoices.Items, want.Invoices)
	}
	if !reflect.DeepEqual(v.Inquiries.Items, want.Inquiries) {
		t.Errorf("inquiries=%+v, want %+v", v.Inquiries.Items, want.Inquiries)
	}
	// One load at login; the read was served by the cache.
	for _, ep := range []string{"basic", "interests", "orders", "invoices", "inquiries"} {
		if got := c.Hits(ep); got != 1 {
			t.Errorf("%s hits=%d, want 1", ep, got)
		}
	}
}

func sorted(ss []string) []string {
	out := append([]string(nil), ss...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// An empty profile (no lists at all, null interests) is valid.
func TestEmptyProfile(t *testing.T) {
	c := crmtest.New(t)
	bob := &profile.Profile{Basic: profile.Basic{ID: uuid.New(), Email: "bob@example.com", Created: day}}
	c.Add("bob@example.com", "pw", bob)
	cl, _ := newClient(t, c, crm.Config{})
	ctx := context.Background()
	tags, err := cl.LoadInterests(ctx, bob.Basic.ID)
	if err != nil || len(tags) != 0 {
		t.Fatalf("interests=%v err=%v, want none", tags, err)
	}
	orders, err := cl.LoadOrders(ctx, bob.Basic.ID)
	if err != nil || len(orders) != 0 {
		t.Fatalf("orders=%v err=%v, want none", orders, err)
	}
}

// A CRM that does not answer: each attempt times out, the load is retried
// up to MaxAttempts and then fails as unavailable.
func TestSlowCRM(t *testing.T) {
	c := crmtest.New(t)
	c.Add(zoeEmail, zoePassword, zoe())
	c.SetIntercept(c.Hang)
	cl, rec := newClient(t, c, crm.Config{Timeout: 50 * time.Millisecond, MaxAttempts: 3})
	_, err := cl.LoadOrders(context.Background(), zoeID)
	if !errors.Is(err, profile.ErrUnavailable) || errors.Is(err, profile.ErrBadBackendResponse) {
		t.Fatalf("err=%v, want ErrUnavailable only", err)
	}
	if !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Errorf("err=%q does not say it timed out", err)
	}
	outcomes, retries := rec.get("orders")
	if got, want := strings.Join(outcomes, ","), "timeout,timeout,timeout"; got != want {
		t.Errorf("attempt outcomes=%s, want %s", got, want)
	}
	if retries != 2 {
		t.Errorf("retries=%d, want 2", retries)
	}
	if got := c.Hits("orders"); got != 3 {
		t.Errorf("CRM saw %d requests, want 3", got)
	}
}

// The caller's context bounds all attempts: once it ends, no retry starts.
func TestCallerContextEndsRetries(t *testing.T) {
	c := crmtest.New(t)
	c.SetIntercept(c.Hang)
	cl, _ := newClient(t, c, crm.Config{Timeout: time.Minute, MaxAttempts: 5})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := cl.LoadBasic(ctx, zoeID)
	if !errors.Is(err, profile.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err=%v, want ErrUnavailable wrapping DeadlineExceeded", err)
	}
	if got := c.Hits("basic"); got != 1 {
		t.Errorf("CRM saw %d requests, want 1 (no retry after the caller gave up)", got)
	}
}

// A flaky CRM: the first two attempts fail in a retryable way, the third
// succeeds, and the caller never notices.
func TestFlakyCRM(t *testing.T) {
	tests := []struct {
		name string
		fail func(w http.ResponseWriter)
		want string // the outcome of the failed attempts
	}{
		{"503", func(w http.ResponseWriter) { http.Error(w, "busy", http.StatusServiceUnavailable) }, "503"},
		{"500", func(w http.ResponseWriter) { http.Error(w, "oops", http.StatusInternalServerError) }, "500"},
		{"429 with Retry-After", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "1") // capped by MaxBackoff
			http.Error(w, "slow down", http.StatusTooManyRequests)
		}, "429"},
		{"connection dropped", func(w http.ResponseWriter) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}, "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := crmtest.New(t)
			want := zoe()
			c.Add(zoeEmail, zoePassword, want)
			c.SetIntercept(func(w http.ResponseWriter, _ *http.Request, endpoint string, n int) bool {
				if endpoint == "orders" && n <= 2 {
					tt.fail(w)
					return true
				}
				return false
			})
			cl, rec := newClient(t, c, crm.Config{MaxAttempts: 3})
			got, err := cl.LoadOrders(context.Background(), zoeID)
			if err != nil {
				t.Fatalf("err=%v, want success after retries", err)
			}
			if !reflect.DeepEqual(got, want.Orders) {
				t.Fatalf("orders differ after retries")
			}
			outcomes, retries := rec.get("orders")
			if g, w := strings.Join(outcomes, ","), tt.want+","+tt.want+",200"; g != w {
				t.Errorf("attempt outcomes=%s, want %s", g, w)
			}
			if retries != 2 {
				t.Errorf("retries=%d, want 2", retries)
			}
		})
	}
}

// A CRM that keeps failing gives up after MaxAttempts with ErrUnavailable.
func TestRetriesAreBounded(t *testing.T) {
	c := crmtest.New(t)
	c.SetIntercept(func(w http.ResponseWriter, _ *http.Request, _ string, _ int) bool {
		http.Error(w, "down", http.StatusBadGateway)
		return true
	})
	cl, _ := newClient(t, c, crm.Config{MaxAttempts: 4})
	_, err := cl.LoadInvoices(context.Background(), zoeID)
	if !errors.Is(err, profile.ErrUnavailable) || !strings.Contains(err.Error(), "status 502") {
		t.Fatalf("err=%v, want ErrUnavailable naming status 502", err)
	}
	if got := c.Hits("invoices"); got != 4 {
		t.Errorf("CRM saw %d requests, want 4", got)
	}
}

// A broken CRM: answers that break the contract fail at once, with an error
// that says what was wrong, and are never retried.
func TestBrokenCRM(t *testing.T) {
	other := uuid.MustParse("33333333-3333-4333-8333-333333333333")
	body := func(status int, s string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(s))
		}
	}
	tests := []struct {
		name     string
		endpoint string
		answer   func(w http.ResponseWriter)
		wantText string
	}{
		{"garbage", "orders", body(200, `<html>oops</html>`), "invalid JSON"},
		{"truncated", "orders", body(200, `[{"id":"o1",`), "invalid JSON"},
		{"trailing data", "interests", body(200, `["a"] ["b"]`), "invalid JSON"},
		{"object for a list", "orders", body(200, `{"orders":[]}`), "invalid JSON"},
		{"money as a decimal", "orders", body(200,
			`[{"id":"o1","number":"N","date":"2026-01-02T10:30:00Z","status":"new","total":14.99,"currency":"EUR"}]`), "invalid JSON"},
		{"date not RFC 3339", "invoices", body(200,
			`[{"id":"i1","number":"N","date":"02.01.2026","amount":1,"currency":"EUR","paid":true}]`), "invalid JSON"},
		{"missing fields", "orders", body(200,
			`[{"id":"o1","number":"N","date":"2026-01-02T10:30:00Z","status":"new"}]`), `item 0: missing required field "total", "currency"`},
		{"empty id", "inquiries", body(200,
			`[{"id":"","closed":false,"submitted":"2026-01-02T10:30:00Z"}]`), "item 0: empty id"},
		{"duplicate id", "invoices", body(200,
			`[{"id":"i1","number":"N","date":"2026-01-02T10:30:00Z","amount":1,"currency":"EUR","paid":true},
			  {"id":"i1","number":"M","date":"2026-01-02T10:30:00Z","amount":2,"currency":"EUR","paid":false}]`), `item 1: id "i1" repeats item 0`},
		{"basic without id", "basic", body(200, `{"email":"zoe@example.com","created":"2026-01-02T10:30:00Z"}`), `missing required field "id"`},
		{"another user's data", "basic", body(200,
			`{"id":"`+other.String()+`","email":"x@example.com","created":"2026-01-02T10:30:00Z"}`), "basic data of user " + other.String()},
		{"404", "basic", body(404, `{"error":"no such user"}`), "unexpected status 404"},
		{"400", "orders", body(400, `{}`), "unexpected status 400"},
		{"redirect", "orders", func(w http.ResponseWriter) {
			w.Header().Set("Location", "http://elsewhere.invalid/")
			w.WriteHeader(http.StatusFound)
		}, "unexpected status 302"},
		{"huge body", "orders", body(200, `[`+strings.Repeat(`{"id":"o1"},`, 1000)+`{}]`), "response body exceeds 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := crmtest.New(t)
			c.Add(zoeEmail, zoePassword, zoe())
			c.SetIntercept(func(w http.ResponseWriter, _ *http.Request, endpoint string, _ int) bool {
				if endpoint == tt.endpoint {
					tt.answer(w)
					return true
				}
				return false
			})
			cl, rec := newClient(t, c, crm.Config{MaxAttempts: 3, MaxBodyBytes: 4096})
			ctx := context.Background()
			var err error
			switch tt.endpoint {
			case "basic":
				_, err = cl.LoadBasic(ctx, zoeID)
			case "interests":
				_, err = cl.LoadInterests(ctx, zoeID)
			case "orders":
				_, err = cl.LoadOrders(ctx, zoeID)
			case "invoices":
				_, err = cl.LoadInvoices(ctx, zoeID)
			case "inquiries":
				_, err = cl.LoadInquiries(ctx, zoeID)
			}
			if !errors.Is(err, profile.ErrBadBackendResponse) || errors.Is(err, profile.ErrUnavailable) {
				t.Fatalf("err=%v, want ErrBadBackendResponse (and not ErrUnavailable)", err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("err=%q, want it to say %q", err, tt.wantText)
			}
			if !strings.Contains(err.Error(), "/users/"+zoeID.String()+"/"+tt.endpoint) {
				t.Errorf("err=%q does not name the request", err)
			}
			if got := c.Hits(tt.endpoint); got != 1 {
				t.Errorf("CRM saw %d requests, want 1 (no retry)", got)
			}
			if _, retries := rec.get(tt.endpoint); retries != 0 {
				t.Errorf("retries=%d, want 0", retries)
			}
		})
	}
}

// Authenticate: 401 is the one "invalid credentials"; nothing is retried,
// not even a 503, because a CRM counts failed password checks.
func TestAuthenticate(t *testing.T) {
	tests := []struct {
		name    string
		answer  func(w http.ResponseWriter) // nil: the CRM answers itself
		email   string
		pass    string
		want    error
		wantErr string
	}{
		{name: "ok", email: zoeEmail, pass: zoePassword},
		{name: "wrong password", email: zoeEmail, pass: "nope", want: profile.ErrInvalidCredentials},
		{name: "unknown email", email: "who@example.com", pass: zoePassword, want: profile.ErrInvalidCredentials},
		{name: "503 is not retried", answer: func(w http.ResponseWriter) { http.Error(w, "x", http.StatusServiceUnavailable) },
			email: zoeEmail, pass: zoePassword, want: profile.ErrUnavailable, wantErr: "status 503"},
		{name: "garbage", answer: func(w http.ResponseWriter) { _, _ = w.Write([]byte("ok")) },
			email: zoeEmail, pass: zoePassword, want: profile.ErrBadBackendResponse, wantErr: "invalid JSON"},
		{name: "no user_id", answer: func(w http.ResponseWriter) { _, _ = w.Write([]byte(`{"id":"x"}`)) },
			email: zoeEmail, pass: zoePassword, want: profile.ErrBadBackendResponse, wantErr: `missing field "user_id"`},
		{name: "nil user_id", answer: func(w http.ResponseWriter) { _, _ = w.Write([]byte(`{"user_id":"` + uuid.Nil.String() + `"}`)) },
			email: zoeEmail, pass: zoePassword, want: profile.ErrBadBackendResponse, wantErr: "not a user id"},
		{name: "403", answer: func(w http.ResponseWriter) { http.Error(w, "x", http.StatusForbidden) },
			email: zoeEmail, pass: zoePassword, want: profile.ErrBadBackendResponse, wantErr: "unexpected status 403"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := crmtest.New(t)
			c.Add(zoeEmail, zoePassword, zoe())
			if tt.answer != nil {
				c.SetIntercept(func(w http.ResponseWriter, _ *http.Request, _ string, _ int) bool {
					tt.answer(w)
					return true
				})
			}
			cl, rec := newClient(t, c, crm.Config{MaxAttempts: 3})
			id, err := cl.Authenticate(context.Background(), tt.email, tt.pass)
			if tt.want == nil {
				if err != nil || id != zoeID {
					t.Fatalf("id=%s err=%v, want %s", id, err, zoeID)
				}
			} else if !errors.Is(err, tt.want) {
				t.Fatalf("err=%v, want %v", err, tt.want)
			}
			if tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err=%q, want it to say %q", err, tt.wantErr)
			}
			if got := c.Hits("authenticate"); got != 1 {
				t.Errorf("CRM saw %d authenticate requests, want 1", got)
			}
			if _, retries := rec.get("authenticate"); retries != 0 {
				t.Errorf("retries=%d, want 0", retries)
			}
		})
	}
}

// Authenticate is not retried on a timeout either.
func TestAuthenticateTimeoutNotRetried(t *testing.T) {
	c := crmtest.New(t)
	c.SetIntercept(c.Hang)
	cl, _ := newClient(t, c, crm.Config{Timeout: 30 * time.Millisecond, MaxAttempts: 3})
	_, err := cl.Authenticate(context.Background(), zoeEmail, zoePassword)
	if !errors.Is(err, profile.ErrUnavailable) {
		t.Fatalf("err=%v, want ErrUnavailable", err)
	}
	if got := c.Hits("authenticate"); got != 1 {
		t.Errorf("CRM saw %d authenticate requests, want 1", got)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, u := range []string{"", "crm.internal", "ftp://crm/", "http://", "http://crm/?x=1", "://"} {
		if _, err := crm.New(crm.Config{BaseURL: u}); err == nil {
			t.Errorf("New(%q): no error", u)
		}
	}
	_, err := crm.New(crm.Config{BaseURL: "http://user:hunter2@crm/?q"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("err=%v: want an error that hides the password", err)
	}
	if _, err := crm.New(crm.Config{BaseURL: "http://crm", Timeout: -1}); err == nil {
		t.Error("negative timeout: no error")
	}
}

func TestBackoff(t *testing.T) {
	cl, err := crm.New(crm.Config{BaseURL: "http://crm", BaseBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		attempt    int
		retryAfter time.Duration
		lo, hi     time.Duration
	}{
		{1, 0, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 0, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 0, 200 * time.Millisecond, 400 * time.Millisecond},
		{5, 0, 500 * time.Millisecond, time.Second},   // capped
		{100, 0, 500 * time.Millisecond, time.Second}, // no overflow
		{1, 700 * time.Millisecond, 700 * time.Millisecond, 700 * time.Millisecond},
		{1, time.Hour, time.Second, time.Second}, // Retry-After capped too
	}
	for _, tt := range tests {
		for range 50 {
			if d := cl.Backoff(tt.attempt, tt.retryAfter); d < tt.lo || d > tt.hi {
				t.Fatalf("Backoff(%d, %s)=%s, want in [%s, %s]", tt.attempt, tt.retryAfter, d, tt.lo, tt.hi)
			}
		}
	}
}
