package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/internal/crmtest"
	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
)

// Per-section freshness (issue 12), through the real program: two
// instances on one Redis and one fake CRM that counts its requests.

// freshPair starts two instances of the service on target with env.
func freshPair(t *testing.T, target redistest.Target, env map[string]string) (*e2e, *e2e) {
	t.Helper()
	return startE2EOn(t, target, env), startE2EOn(t, target, env)
}

// ordersOf reads the first page of orders: status, Profile-Stale, numbers.
func (e *e2e) ordersOf(c *http.Client) (int, string, []string) {
	e.t.Helper()
	resp, body := e.do(c, "GET", "/api/me/orders?limit=5", nil)
	var out struct {
		Items []struct {
			Number string `json:"number"`
		} `json:"items"`
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			e.t.Fatalf("orders: %v: %s", err, body)
		}
	}
	var nums []string
	for _, it := range out.Items {
		nums = append(nums, it.Number)
	}
	return resp.StatusCode, resp.Header.Get("Profile-Stale"), nums
}

// metric is the value of one sample on /metrics, 0 if absent.
func (e *e2e) metric(name string) float64 {
	e.t.Helper()
	_, body := e.do(&http.Client{}, "GET", "/metrics", nil)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	var v float64
	fmt.Sscan(m[1], &v)
	return v
}

func newOrder(n string) profile.Order {
	return profile.Order{ID: n, Number: n, Date: time.Now().UTC().Truncate(time.Second), Status: "new",
		Total: 100, Currency: "EUR", ItemCount: 1, ShippingCity: "Lund"}
}

func prependOrder(crm *crmtest.CRM, id uuid.UUID, number string) {
	crm.Update(id, func(p *profile.Profile) { p.Orders = append([]profile.Order{newOrder(number)}, p.Orders...) })
}

// A section past its window is served at once from Redis, marked stale,
// and reloaded in the background once across two instances: one CRM
// request for orders, none for the other sections, no read waiting.
func TestE2EFreshStaleReloadedOnceAcrossInstances(t *testing.T) {
	redistest.Targets(t, func(t *testing.T, target redistest.Target) {
		crm := crmtest.New(t)
		alice := crm.AddDemo(t, "alice@example.com", "alice-secret")
		a, b := freshPair(t, target, map[string]string{"BACKEND_URL": crm.URL, "PROFILE_FRESH": "orders=2s"})
		c := a.browser() // the cookie is sent to both: same host
		wantStatus(t, a.login(c, "alice@example.com", "alice-secret"), http.StatusSeeOther)
		for _, e := range []*e2e{a, b} {
			if st, stale, nums := e.ordersOf(c); st != 200 || stale != "" || nums[0] != "ORD-1-000025" {
				t.Fatalf("fresh read: %d %q %v", st, stale, nums)
			}
		}
		ordersBefore, basicBefore := crm.Hits("orders"), crm.Hits("basic")
		prependOrder(crm, alice, "ORD-NEW-1")
		time.Sleep(2100 * time.Millisecond) // past the window

		// The first read after the window answers from Redis: old data,
		// marked; it does not wait for the CRM.
		if st, stale, nums := a.ordersOf(c); st != 200 || stale != "orders" || nums[0] != "ORD-1-000025" {
			t.Fatalf("first read past the window: %d Profile-Stale=%q %v; want 200, orders, the cached page", st, stale, nums)
		}
		var wg sync.WaitGroup
		for i := range 32 {
			e := []*e2e{a, b}[i%2]
			wg.Go(func() {
				if st, _, _ := e.ordersOf(c); st != 200 {
					t.Errorf("concurrent read: %d", st)
				}
			})
		}
		wg.Wait()
		for _, e := range []*e2e{a, b} {
			deadline := time.Now().Add(5 * time.Second)
			for {
				st, stale, nums := e.ordersOf(c)
				if st == 200 && stale == "" && nums[0] == "ORD-NEW-1" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the reloaded orders never showed: %d %q %v", st, stale, nums)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		if got := crm.Hits("orders") - ordersBefore; got != 1 {
			t.Errorf("CRM orders requests after the window: %d, want 1 for two instances", got)
		}
		if got := crm.Hits("basic") - basicBefore; got != 0 {
			t.Errorf("CRM basic requests: %d, want 0 (only orders was stale)", got)
		}
		for name, e := range map[string]*e2e{"a": a, "b": b} {
			if n := e.metric(`profilecache_read_waits_total{reason="miss"}`) + e.metric(`profilecache_read_waits_total{reason="stale_max"}`); n != 0 {
				t.Errorf("instance %s: %v reads waited for the CRM, want 0", name, n)
			}
		}
		if n := a.metric(`profilecache_section_reloads_total{outcome="ok",section="orders"}`) +
			b.metric(`profilecache_section_reloads_total{outcome="ok",section="orders"}`); n != 1 {
			t.Errorf("ok orders reloads over both instances: %v, want 1", n)
		}
		// The reload is told to other systems once, as one section's.
		var stale []string
		for _, x := range streamEntries(t, a.redis) {
			if f := x.FieldValues; f["type"] == "profile.reloaded" && f["reason"] == "stale" {
				stale = append(stale, f["section"]+" "+f["user_id"])
			}
		}
		if want := "orders " + alice.String(); len(stale) != 1 || stale[0] != want {
			t.Errorf("stale reload events %q, want one: %q", stale, want)
		}
	})
}

// A failing CRM: the cached orders are served with Profile-Stale and a note
// on the page; past PROFILE_STALE_MAX the read reloads first, and fails
// while the CRM does; once the CRM is back the read gets the new data.
func TestE2EFreshFailingCRM(t *testing.T) {
	crm := crmtest.New(t)
	alice := crm.AddDemo(t, "alice@example.com", "alice-secret")
	e := startE2EOn(t, redistest.Start(t), map[string]string{"BACKEND_URL": crm.URL, "BACKEND_TIMEOUT": "1s",
		"PROFILE_FRESH": "orders=1s", "PROFILE_STALE_MAX": "4s"})
	c := e.browser()
	wantStatus(t, e.login(c, "alice@example.com", "alice-secret"), http.StatusSeeOther)
	loggedIn := time.Now()
	crm.SetIntercept(func(w http.ResponseWriter, _ *http.Request, endpoint string, _ int) bool {
		if endpoint != "orders" {
			return false
		}
		http.Error(w, `{"error":"down"}`, http.StatusServiceUnavailable)
		return true
	})
	prependOrder(crm, alice, "ORD-NEW-1")
	time.Sleep(1100 * time.Millisecond)
	for i := range 5 {
		if st, stale, nums := e.ordersOf(c); st != 200 || stale != "orders" || nums[0] != "ORD-1-000025" {
			t.Fatalf("read %d with the CRM down: %d Profile-Stale=%q %v; want 200, orders, the cached page", i, st, stale, nums)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, page := e.do(c, "GET", "/profile", nil)
	wantStatus(t, resp, http.StatusOK)
	if !strings.Contains(page, `id="stale"`) || !strings.Contains(page, "ORD-1-000025") {
		t.Error("the profile page lacks the stale note or the cached orders")
	}
	if resp.Header.Get("Profile-Stale") != "orders" {
		t.Errorf("profile page: Profile-Stale=%q", resp.Header.Get("Profile-Stale"))
	}

	time.Sleep(time.Until(loggedIn.Add(4200 * time.Millisecond))) // past PROFILE_STALE_MAX
	if st, _, _ := e.ordersOf(c); st != http.StatusServiceUnavailable {
		t.Fatalf("read past PROFILE_STALE_MAX with the CRM down: %d, want 503", st)
	}
	crm.SetIntercept(nil)
	if st, stale, nums := e.ordersOf(c); st != 200 || stale != "" || nums[0] != "ORD-NEW-1" {
		t.Fatalf("read past PROFILE_STALE_MAX with the CRM back: %d %q %v; want the new orders", st, stale, nums)
	}
	if n := e.metric(`profilecache_read_waits_total{reason="stale_max"}`); n != 2 {
		t.Errorf("reads that waited past the stale limit: %v, want 2", n)
	}
}

// A background reload that read the CRM before a change and commits after
// the change's webhook never brings the older data back: the webhook's
// drop (profile_changed) or erasure makes its commit write nothing.
func TestE2EFreshReloadRacingWebhook(t *testing.T) {
	for _, event := range []string{"profile_changed", "erased"} {
		t.Run(event, func(t *testing.T) {
			redistest.Targets(t, func(t *testing.T, target redistest.Target) {
				testFreshReloadRacingWebhook(t, target, event)
			})
		})
	}
}

func testFreshReloadRacingWebhook(t *testing.T, target redistest.Target, event string) {
	crm := crmtest.New(t)
	alice := crm.AddDemo(t, "alice@example.com", "alice-secret")
	a, b := freshPair(t, target, map[string]string{"BACKEND_URL": crm.URL, "WEBHOOK_SECRET": e2eWebhookSecret,
		"PROFILE_FRESH": "orders=1s"})
	c := a.browser()
	wantStatus(t, a.login(c, "alice@example.com", "alice-secret"), http.StatusSeeOther)
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	crm.SetIntercept(crm.HoldNext("orders", arrived, release))
	prependOrder(crm, alice, "ORD-V2")
	time.Sleep(1100 * time.Millisecond)
	if st, stale, _ := a.ordersOf(c); st != 200 || stale != "orders" {
		t.Fatalf("read past the window: %d %q", st, stale)
	}
	select {
	case <-arrived: // the background reload has read ORD-V2 and is held
	case <-time.After(10 * time.Second):
		t.Fatal("no background reload reached the CRM")
	}
	prependOrder(crm, alice, "ORD-V3")
	resp, _ := b.do(&http.Client{}, "POST", "/internal/profile-changed",
		strings.NewReader(fmt.Sprintf(`{"user_id":%q,"event":%q}`, alice, event)),
		"Content-Type", "application/json", "X-Webhook-Secret", e2eWebhookSecret)
	wantStatus(t, resp, http.StatusNoContent)
	if event == "profile_changed" {
		if st, _, nums := b.ordersOf(c); st != 200 || nums[0] != "ORD-V3" {
			t.Fatalf("read after the webhook: %d %v, want ORD-V3", st, nums)
		}
	}
	close(release)
	outcome := map[string]string{"profile_changed": "superseded", "erased": "fenced"}[event]
	name := `profilecache_section_reloads_total{outcome="` + outcome + `",section="orders"}`
	deadline := time.Now().Add(10 * time.Second)
	for a.metric(name) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached 1", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if event == "erased" {
		if st, _, _ := a.ordersOf(c); st != http.StatusUnauthorized {
			t.Errorf("read after the erasure: %d, want 401", st)
		}
		if keys := redistest.Keys(t, a.redis, "pc:{u:"+alice.String()+"}:*"); len(keys) > 1 {
			t.Errorf("keys of the erased user after the late reload: %v, want the fence only", keys)
		}
		return
	}
	for _, e := range []*e2e{a, b} {
		if st, _, nums := e.ordersOf(c); st != 200 || nums[0] != "ORD-V3" {
			t.Errorf("read after the late reload: %d %v, want ORD-V3", st, nums)
		}
	}
}
