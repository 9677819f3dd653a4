// Package crmtest plays a CRM for tests: an httptest server that speaks the
// JSON API package crm documents, with accounts a test can add and change,
// request counts per endpoint, and a hook to make it slow, flaky or broken.
//
// Its wire types are written out here on purpose, apart from crm's: a
// misspelt field name in either shows up as a failing test, not as two
// matching mistakes.
package crmtest

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/profile"
)

// Prefix is the path the API is served under, so that tests also prove
// that a BACKEND_URL with a path works.
const Prefix = "/crm/v1"

// Intercept sees every request before the CRM answers it: endpoint is
// "authenticate", "basic", "interests", "orders", "invoices" or
// "inquiries", and n counts this endpoint's requests so far (1 for the
// first). Returning true means it has answered, and the CRM stays silent.
type Intercept func(w http.ResponseWriter, r *http.Request, endpoint string, n int) bool

// CRM is a fake CRM. Its methods are safe for concurrent use.
type CRM struct {
	// URL is the BACKEND_URL to give the client: server address plus Prefix.
	URL  string
	srv  *httptest.Server
	done chan struct{} // closed when the test ends, to free hung handlers

	mu        sync.Mutex
	token     string
	accounts  map[uuid.UUID]*account
	byEmail   map[string]uuid.UUID
	hits      map[string]int
	parents   map[string][]string // traceparent headers received, by endpoint
	intercept Intercept
}

type account struct {
	password string
	p        *profile.Profile
}

// New starts a CRM that lives as long as tb.
func New(tb testing.TB) *CRM {
	tb.Helper()
	c := &CRM{accounts: map[uuid.UUID]*account{}, byEmail: map[string]uuid.UUID{}, hits: map[string]int{},
		parents: map[string][]string{}, done: make(chan struct{})}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	tb.Cleanup(func() {
		close(c.done)
		c.srv.Close()
	})
	c.URL = c.srv.URL + Prefix
	return c
}

// Hang is an Intercept for a CRM that never answers: it holds every
// request until the client gives up (or the test ends).
func (c *CRM) Hang(w http.ResponseWriter, r *http.Request, _ string, _ int) bool {
	// The server notices a client that went away only once the body is read.
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-c.done:
	}
	return true
}

// RequireToken makes every request need Authorization: Bearer token.
func (c *CRM) RequireToken(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token = token
}

// Add adds an account whose profile is p (a copy is kept).
func (c *CRM) Add(email, password string, p *profile.Profile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := clone(p)
	c.accounts[p.Basic.ID] = &account{password: password, p: cp}
	c.byEmail[strings.ToLower(email)] = p.Basic.ID
}

// AddDemo adds the mock CRM's demo account with this email and password,
// with the same id and data, and returns its id.
func (c *CRM) AddDemo(tb testing.TB, email, password string) uuid.UUID {
	tb.Helper()
	id := profile.DemoUserID(email)
	p, err := profile.Fetch(context.Background(), profile.NewMockBackend(0), id)
	if err != nil {
		tb.Fatalf("crmtest: demo %s: %v", email, err)
	}
	c.Add(email, password, p)
	return id
}

// Update changes the stored profile of id in place, as a CRM user would.
func (c *CRM) Update(id uuid.UUID, f func(p *profile.Profile)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.accounts[id]; ok {
		f(a.p)
	}
}

// SetIntercept installs f (nil removes it).
func (c *CRM) SetIntercept(f Intercept) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.intercept = f
}

// Hits is how many requests endpoint has had.
func (c *CRM) Hits(endpoint string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits[endpoint]
}

// Traceparents returns the W3C traceparent headers endpoint's requests
// carried, in arrival order (requests without one are left out).
func (c *CRM) Traceparents(endpoint string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.parents[endpoint]...)
}

func (c *CRM) serve(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, Prefix+"/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	parts := strings.Split(path, "/")
	var endpoint string
	switch {
	case len(parts) == 1 && parts[0] == "authenticate" && r.Method == http.MethodPost:
		endpoint = "authenticate"
	case len(parts) == 3 && parts[0] == "users" && r.Method == http.MethodGet:
		endpoint = parts[2]
	default:
		http.NotFound(w, r)
		return
	}

	c.mu.Lock()
	c.hits[endpoint]++
	if tp := r.Header.Get("Traceparent"); tp != "" {
		c.parents[endpoint] = append(c.parents[endpoint], tp)
	}
	n, intercept, token := c.hits[endpoint], c.intercept, c.token
	c.mu.Unlock()
	if intercept != nil && intercept(w, r, endpoint, n) {
		return
	}
	if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
		http.Error(w, `{"error":"bad token"}`, http.StatusUnauthorized)
		return
	}
	if endpoint == "authenticate" {
		c.authenticate(w, r)
		return
	}
	c.answer(w, parts[1], endpoint)
}

// answer writes user's data of endpoint as it is now.
func (c *CRM) answer(w http.ResponseWriter, user, endpoint string) {
	id, err := uuid.Parse(user)
	c.mu.Lock()
	a, found := c.accounts[id]
	var p *profile.Profile
	if found {
		p = clone(a.p)
	}
	c.mu.Unlock()
	if err != nil || !found {
		http.Error(w, `{"error":"no such user"}`, http.StatusNotFound)
		return
	}
	var body any
	switch endpoint {
	case "basic":
		body = toBasic(p.Basic)
	case "interests":
		body = p.Interests
	case "orders":
		body = mapSlice(p.Orders, toOrder)
	case "invoices":
		body = mapSlice(p.Invoices, toInvoice)
	case "inquiries":
		body = mapSlice(p.Inquiries, toInquiry)
	default:
		http.Error(w, `{"error":"no such endpoint"}`, http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// HoldNext is an Intercept that holds the next request to endpoint: it
// reads the answer when the request arrives, then signals arrived (a
// buffered channel) and sends that answer only once release is closed,
// like a reload that read old data and commits late. Other requests pass.
func (c *CRM) HoldNext(endpoint string, arrived chan<- struct{}, release <-chan struct{}) Intercept {
	var taken atomic.Bool
	return func(w http.ResponseWriter, r *http.Request, ep string, _ int) bool {
		if ep != endpoint || !taken.CompareAndSwap(false, true) {
			return false
		}
		rec := httptest.NewRecorder()
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, Prefix+"/"), "/") // users/<id>/<endpoint>
		c.answer(rec, parts[1], ep)
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return true
		case <-c.done:
			return true
		}
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return true
	}
}

func (c *CRM) authenticate(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	id, ok := c.byEmail[strings.ToLower(in.Email)]
	good := ok && c.accounts[id].password == in.Password
	c.mu.Unlock()
	if !good {
		http.Error(w, `{"error":"invalid credentials"}`, http.StatusUnauthorized)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"user_id": id.String()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// The wire shapes, as package crm documents them.

type basicJSON struct {
	ID                  string    `json:"id"`
	FirstName           string    `json:"first_name"`
	LastName            string    `json:"last_name"`
	Email               string    `json:"email"`
	Phone               string    `json:"phone"`
	AddressLine         string    `json:"address_line"`
	PostalCode          string    `json:"postal_code"`
	City                string    `json:"city"`
	Country             string    `json:"country"`
	MarketingPermission bool      `json:"marketing_permission"`
	Created             time.Time `json:"created"`
}

type orderJSON struct {
	ID           string    `json:"id"`
	Number       string    `json:"number"`
	Date         time.Time `json:"date"`
	Status       string    `json:"status"`
	Total        int64     `json:"total"`
	Currency     string    `json:"currency"`
	ItemCount    int       `json:"item_count"`
	ShippingCity string    `json:"shipping_city"`
}

type invoiceJSON struct {
	ID       string    `json:"id"`
	Number   string    `json:"number"`
	Date     time.Time `json:"date"`
	Amount   int64     `json:"amount"`
	Currency string    `json:"currency"`
	Paid     bool      `json:"paid"`
}

type inquiryJSON struct {
	ID             string    `json:"id"`
	Closed         bool      `json:"closed"`
	Description    string    `json:"description"`
	Submitted      time.Time `json:"submitted"`
	SubmitterEmail string    `json:"submitter_email"`
	SubmitterName  string    `json:"submitter_name"`
}

func toBasic(b profile.Basic) basicJSON {
	return basicJSON{ID: b.ID.String(), FirstName: b.FirstName, LastName: b.LastName, Email: b.Email,
		Phone: b.Phone, AddressLine: b.AddressLine, PostalCode: b.PostalCode, City: b.City,
		Country: b.Country, MarketingPermission: b.MarketingPermission, Created: b.Created}
}

func toOrder(o profile.Order) orderJSON {
	return orderJSON{ID: o.ID, Number: o.Number, Date: o.Date, Status: o.Status, Total: int64(o.Total),
		Currency: o.Currency, ItemCount: o.ItemCount, ShippingCity: o.ShippingCity}
}

func toInvoice(i profile.Invoice) invoiceJSON {
	return invoiceJSON{ID: i.ID, Number: i.Number, Date: i.Date, Amount: int64(i.Amount), Currency: i.Currency, Paid: i.Paid}
}

func toInquiry(q profile.Inquiry) inquiryJSON {
	return inquiryJSON{ID: q.ID, Closed: q.Closed, Description: q.Description, Submitted: q.Submitted,
		SubmitterEmail: q.SubmitterEmail, SubmitterName: q.SubmitterName}
}

func mapSlice[T, U any](in []T, f func(T) U) []U {
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

func clone(p *profile.Profile) *profile.Profile {
	cp := *p
	cp.Interests = append([]string(nil), p.Interests...)
	cp.Orders = append([]profile.Order(nil), p.Orders...)
	cp.Invoices = append([]profile.Invoice(nil), p.Invoices...)
	cp.Inquiries = append([]profile.Inquiry(nil), p.Inquiries...)
	return &cp
}
