package auth_test

import (
	"errors"
	"testing"
	"time"

	"github.com/profilecache/profilecache/auth"
	"github.com/profilecache/profilecache/profile"
)

// TestVerify: the net/http face of the middleware accepts and rejects what
// the middleware does, and a ReadOnly Manager writes nothing to the store:
// no sliding, no revoking of a timed-out session (which it still rejects).
func TestVerify(t *testing.T) {
	for _, tc := range []struct {
		name        string
		readOnly    bool
		idle        time.Duration // the clock advances this much before the check
		revoke      bool
		cookie      bool
		wantOK      bool
		wantTouches int
		wantRevoked int
	}{
		{name: "bearer", wantOK: true},
		{name: "cookie", cookie: true, wantOK: true},
		{name: "slides when idle a while", idle: 2 * time.Minute, wantOK: true, wantTouches: 1},
		{name: "read-only does not slide", readOnly: true, idle: 2 * time.Minute, wantOK: true},
		{name: "revoked", revoke: true, wantRevoked: 1},
		{name: "idle timeout revokes", idle: 25 * time.Minute, wantRevoked: 1},
		{name: "read-only idle timeout rejects, revokes nothing", readOnly: true, idle: 25 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *auth.Config) { c.ReadOnly = tc.readOnly })
			iss := e.issue(t, userA)
			if tc.revoke {
				if err := e.m.Revoke(t.Context(), userA, iss.SessionID); err != nil {
					t.Fatal(err)
				}
			}
			// LastSeen moves back rather than the clock forward: the
			// fake store would expire the session itself, and only the
			// Manager's own idle check is under test.
			e.store.edit(userA, iss.SessionID, func(s *profile.Session) { s.LastSeen = s.LastSeen.Add(-tc.idle) })
			req := bearerRequest(iss.Token)
			if tc.cookie {
				req = cookieRequest(auth.DefaultCookieName, iss.Token)
			}
			id, err := e.m.Verify(t.Context(), req)
			switch {
			case tc.wantOK && (err != nil || id.UserID != userA || id.SessionID != iss.SessionID):
				t.Fatalf("Verify = %+v, %v; want %s/%s", id, err, userA, iss.SessionID)
			case !tc.wantOK && !errors.Is(err, auth.ErrUnauthenticated):
				t.Fatalf("Verify = %+v, %v; want ErrUnauthenticated", id, err)
			}
			if got := e.store.touchCount(); got != tc.wantTouches {
				t.Errorf("Touch called %d times, want %d", got, tc.wantTouches)
			}
			if got := len(e.store.revoked); got != tc.wantRevoked {
				t.Errorf("Revoke called %d times, want %d", got, tc.wantRevoked)
			}
		})
	}
}
