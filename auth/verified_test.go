package auth_test

import (
	"strings"
	"testing"
	"time"

	"github.com/profilecache/profilecache/auth"
)

// A JWT verified once is remembered (verified.go), but its expiry still
// counts: past exp it is rejected as expired, not let through to the store.
// Here the session's max age ends at the same instant, so a cache that
// forgot exp would reject for the wrong reason ("maximum age").
func TestVerifiedJWTStillExpires(t *testing.T) {
	e := newEnv(t, func(c *auth.Config) { c.TokenTTL, c.MaxAge = 20*time.Minute, 30*time.Minute })
	iss := e.issue(t, userA)
	for _, step := range []time.Duration{0, 0, 15 * time.Minute, 14 * time.Minute} {
		e.clock.Advance(step)
		if r := e.serve(bearerRequest(iss.Token)); r.err != nil {
			t.Fatalf("after %v: err = %v, want nil", step, r.err)
		}
	}
	e.clock.Advance(2 * time.Minute) // 31 min: past exp, 2 min idle
	r := e.serve(bearerRequest(iss.Token))
	if r.err == nil || !strings.Contains(r.err.Error(), "token expired") {
		t.Fatalf("past exp: err = %v, want one saying token expired", r.err)
	}
}
