package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/profilecache/profilecache/internal/crmtest"
	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
)

// Refresh cooldown and login throttling, end to end: two instances of the
// program on one Redis, driven over HTTP, the CRM's own request counts and
// what Redis holds checked from outside.

// twoInstances runs two instances of the service on one fresh redis-server
// with the same env (e2eEnv plus env).
func twoInstances(t *testing.T, env map[string]string) (*e2e, *e2e) {
	t.Helper()
	srv := redistest.Start(t)
	return startE2EOn(t, srv, env), startE2EOn(t, srv, env)
}

// retryAfterSecs parses a Retry-After of whole seconds; 0 when absent or
// not a positive number.
func retryAfterSecs(resp *http.Response) int {
	n, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || n < 1 {
		return 0
	}
	return n
}

// ageProfile makes the user's cached profile look loaded an hour ago, as
// it would be after an hour's wait.
func (e *e2e) ageProfile(t *testing.T, email string) {
	t.Helper()
	meta := "pc:{u:" + profile.DemoUserID(email).String() + "}:meta"
	old := strconv.FormatInt(time.Now().Add(-time.Hour).UnixMilli(), 10)
	ctx := context.Background()
	if n, err := e.redis.Do(ctx, e.redis.B().Exists().Key(meta).Build()).AsInt64(); err != nil || n != 1 {
		t.Fatalf("no cached profile of %s to age (%v)", email, err)
	}
	if err := e.redis.Do(ctx, e.redis.B().Hset().Key(meta).FieldValue().FieldValue("loaded", old).Build()).Error(); err != nil {
		t.Fatal(err)
	}
}

// Forced reloads of carol's 10,000 orders in a loop, with a Bearer token
// (no CSRF), on both instances: one reaches the CRM, every other one is a
// 429 with Retry-After, until the profile is older than the cooldown. The
// webhook is not subject to the cooldown.
func TestE2ERefreshCooldownAcrossInstances(t *testing.T) {
	crm := crmtest.New(t)
	crm.AddDemo(t, "carol@example.com", "carol-secret")
	// A long cooldown, so that no loop outlasts it on a slow machine; the
	// 10s default is checked in TestLoadConfig.
	const cooldown = 10 * time.Minute
	a, b := twoInstances(t, map[string]string{"BACKEND_URL": crm.URL, "REFRESH_COOLDOWN": cooldown.String(),
		"WEBHOOK_SECRET": e2eWebhookSecret})
	if !strings.Contains(a.log.String(), `"refresh_cooldown":"10m0s"`) {
		t.Errorf("the config line does not log the cooldown:\n%s", grepLines(a.log.String(), `"config"`))
	}
	bearer := a.apiLogin("carol@example.com", "carol-secret")
	c := apiClient(t)
	refresh := func(e *e2e) *http.Response {
		resp, body := e.do(c, "POST", "/api/me/refresh", nil, bearer...)
		if resp.StatusCode == http.StatusTooManyRequests && !isErrorJSON(body) {
			t.Fatalf("429 without a JSON error: %s", body)
		}
		return resp
	}
	loads := func() int { return crm.Hits("orders") }
	if got := loads(); got != 1 {
		t.Fatalf("CRM order loads after login: %d, want 1", got)
	}

	// The login's preload is young: a refresh right away is refused.
	resp := refresh(b)
	if resp.StatusCode != http.StatusTooManyRequests || retryAfterSecs(resp) < 1 || retryAfterSecs(resp) > int(cooldown.Seconds()) {
		t.Fatalf("refresh right after login: %d, Retry-After %q; want 429 with 1..%d", resp.StatusCode,
			resp.Header.Get("Retry-After"), int(cooldown.Seconds()))
	}

	t.Run("SequentialLoop", func(t *testing.T) {
		a.ageProfile(t, "carol@example.com")
		before := loads()
		const calls = 40
		statuses := map[int]int{}
		last := int(cooldown.Seconds())
		for i := range calls {
			resp := refresh([]*e2e{a, b}[i%2])
			statuses[resp.StatusCode]++
			switch {
			case i == 0 && resp.StatusCode != http.StatusNoContent:
				t.Fatalf("the first refresh of an old profile: %d, want 204", resp.StatusCode)
			case i > 0 && resp.StatusCode != http.StatusTooManyRequests:
				t.Fatalf("refresh %d within the cooldown: %d, want 429", i+1, resp.StatusCode)
			case i > 0:
				ra := retryAfterSecs(resp)
				if ra < 1 || ra > last {
					t.Fatalf("refresh %d: Retry-After %q, want 1..%d (never growing)", i+1, resp.Header.Get("Retry-After"), last)
				}
				last = ra
			}
		}
		reached := loads() - before
		t.Logf("%d refreshes over two instances: %v; refresh calls that reached the CRM: %d", calls, statuses, reached)
		if reached != 1 {
			t.Fatalf("refresh calls that reached the CRM: %d, want 1", reached)
		}
	})

	t.Run("ConcurrentBurst", func(t *testing.T) {
		a.ageProfile(t, "carol@example.com")
		before := loads()
		const calls = 30
		var mu sync.Mutex
		statuses := map[int]int{}
		var wg sync.WaitGroup
		for i := range calls {
			wg.Go(func() {
				resp := refresh([]*e2e{a, b}[i%2])
				mu.Lock()
				defer mu.Unlock()
				statuses[resp.StatusCode]++
			})
		}
		wg.Wait()
		reached := loads() - before
		t.Logf("%d concurrent refreshes over two instances: %v; refresh calls that reached the CRM: %d", calls, statuses, reached)
		if reached != 1 || statuses[http.StatusNoContent] < 1 || statuses[http.StatusNoContent]+statuses[http.StatusTooManyRequests] != calls {
			t.Fatalf("statuses %v, CRM loads %d: want only 204 and 429, at least one 204, and one load", statuses, reached)
		}
	})

	t.Run("WebhookNotSubject", func(t *testing.T) {
		before := loads()
		resp, _ := a.do(c, "POST", "/internal/profile-changed",
			strings.NewReader(fmt.Sprintf(`{"user_id":%q}`, profile.DemoUserID("carol@example.com"))),
			"Content-Type", "application/json", "X-Webhook-Secret", e2eWebhookSecret)
		wantStatus(t, resp, http.StatusNoContent)
		// The dropped profile has no age: a refresh loads it again.
		wantStatus(t, refresh(b), http.StatusNoContent)
		wantStatus(t, refresh(a), http.StatusTooManyRequests)
		if got := loads() - before; got != 1 {
			t.Fatalf("CRM loads: %d, want 1", got)
		}
	})
}

// loginAttempt posts a JSON login to e with an X-Forwarded-For (empty: none).
func loginAttempt(t *testing.T, c *http.Client, e *e2e, email, password, xff string) (*http.Response, string) {
	t.Helper()
	hdr := []string{"Content-Type", "application/json"}
	if xff != "" {
		hdr = append(hdr, "X-Forwarded-For", xff)
	}
	return e.do(c, "POST", "/api/login", strings.NewReader(fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)), hdr...)
}

// Per address: one budget for both instances, so that N+k attempts spread
// over them get exactly N through, the rest 429 with Retry-After.
func TestE2ELoginThrottlePerAddressAcrossInstances(t *testing.T) {
	const burst, extra = 6, 8
	a, b := twoInstances(t, map[string]string{"LOGIN_BURST": strconv.Itoa(burst), "LOGIN_RATE": "0.001"})
	c := apiClient(t)
	statuses := map[int]int{}
	for i := range burst + extra {
		// Unknown accounts, a new one each time: only the address budget
		// is at stake.
		resp, body := loginAttempt(t, c, []*e2e{a, b}[i%2], fmt.Sprintf("nobody-%d@example.com", i), "guess", "")
		statuses[resp.StatusCode]++
		switch resp.StatusCode {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			if ra := retryAfterSecs(resp); ra < 1 || ra > 1000 || !isErrorJSON(body) {
				t.Fatalf("attempt %d: 429 with Retry-After %q and body %s, want 1..1000 and a JSON error", i+1, resp.Header.Get("Retry-After"), body)
			}
		default:
			t.Fatalf("attempt %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
	t.Logf("%d attempts from one address over two instances at a burst of %d: %v", burst+extra, burst, statuses)
	if statuses[http.StatusUnauthorized] != burst || statuses[http.StatusTooManyRequests] != extra {
		t.Fatalf("statuses %v, want exactly %d through (401) and %d refused (429)", statuses, burst, extra)
	}
	// The form login on either instance is refused too, with the friendly page.
	br := b.browser()
	_, page := b.do(br, "GET", "/login", nil)
	resp, page := b.do(br, "POST", "/login", strings.NewReader(form("email", "x@example.com", "password", "p", "_csrf", csrfFrom(t, page))),
		"Content-Type", formType)
	if resp.StatusCode != http.StatusTooManyRequests || retryAfterSecs(resp) < 1 || !strings.Contains(page, "Too many attempts") {
		t.Fatalf("form login over the budget: %d, Retry-After %q; want 429, Retry-After and the friendly page", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// The budget is in Redis, under the prefix, in its own hash tag.
	if keys := redistest.Keys(t, a.redis, "pc:rl:*"); !strings.Contains(strings.Join(keys, " "), "pc:rl:{a:127.0.0.1}") {
		t.Errorf("limiter keys in Redis: %v, want pc:rl:{a:127.0.0.1}", keys)
	}
}

// Per account: wrong passwords for alice from many addresses (behind a
// trusted proxy, so X-Forwarded-For names the client) are throttled on
// alice's account across both instances, while bob logs in fine. IPv6
// clients share their /64's address budget.
func TestE2ELoginThrottlePerAccountAcrossInstances(t *testing.T) {
	const accountBurst = 4
	a, b := twoInstances(t, map[string]string{
		"TRUSTED_PROXIES": "127.0.0.1",
		"LOGIN_BURST":     "2", "LOGIN_RATE": "0.001",
		"LOGIN_ACCOUNT_BURST": strconv.Itoa(accountBurst), "LOGIN_ACCOUNT_RATE": "0.001",
	})
	c := apiClient(t)
	statuses := map[int]int{}
	const addresses = 20
	for i := range addresses {
		resp, body := loginAttempt(t, c, []*e2e{a, b}[i%2], "alice@example.com", fmt.Sprintf("guess-%d", i), fmt.Sprintf("198.51.100.%d", i+1))
		statuses[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests && (retryAfterSecs(resp) < 1 || !isErrorJSON(body)) {
			t.Fatalf("guess %d: 429 without Retry-After or JSON error: %q %s", i+1, resp.Header.Get("Retry-After"), body)
		}
	}
	t.Logf("%d wrong passwords for alice from %d addresses over two instances, account burst %d: %v", addresses, addresses, accountBurst, statuses)
	if statuses[http.StatusUnauthorized] != accountBurst || statuses[http.StatusTooManyRequests] != addresses-accountBurst {
		t.Fatalf("statuses %v, want exactly %d guesses checked (401) and %d refused (429)", statuses, accountBurst, addresses-accountBurst)
	}
	// Other accounts are not affected, from the same addresses, which still
	// have budget (each made one attempt of two).
	for i, e := range []*e2e{a, b} {
		resp, body := loginAttempt(t, c, e, "bob@example.com", "bob-secret", fmt.Sprintf("198.51.100.%d", i+1))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("bob on instance %d: %d %s, want 200", i+1, resp.StatusCode, body)
		}
	}
	// bob's successes gave their account attempts back: five more logins
	// (from fresh addresses) all pass.
	for i := range 5 {
		if resp, body := loginAttempt(t, c, []*e2e{a, b}[i%2], "bob@example.com", "bob-secret", fmt.Sprintf("203.0.113.%d", i+1)); resp.StatusCode != http.StatusOK {
			t.Fatalf("bob, login %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
	// The documented price: alice herself waits out the budget too.
	if resp, _ := loginAttempt(t, c, b, "alice@example.com", "alice-secret", "192.0.2.200"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("alice's right password on her spent budget: %d, want 429", resp.StatusCode)
	}

	// IPv6: every address of a /64 draws from one budget (2 attempts).
	var v6 []int
	for _, ip := range []string{"2001:db8:aa:1::1", "2001:db8:aa:1::2", "2001:db8:aa:1:ffff::9"} {
		resp, _ := loginAttempt(t, c, a, "nobody@example.com", "guess", ip)
		v6 = append(v6, resp.StatusCode)
	}
	if fmt.Sprint(v6) != "[401 401 429]" {
		t.Errorf("three addresses of one /64: %v, want [401 401 429]", v6)
	}
	if resp, _ := loginAttempt(t, c, b, "carol@example.com", "guess", "2001:db8:aa:2::1"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the next /64: %d, want 401", resp.StatusCode)
	}
}
