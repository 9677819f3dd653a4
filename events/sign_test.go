package events_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/events"
	"github.com/profilecache/profilecache/profile"
)

// The Standard Webhooks specification's published example (also in the
// reference libraries' tests): a receiver's existing library accepts what
// reproduces it.
func TestSignMatchesTheSpecificationExample(t *testing.T) {
	s, err := events.NewSigner("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %q, want %q", got, want)
	}
	// A changed id, timestamp or body changes it.
	for _, other := range []string{
		s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJeK", 1614265330, []byte(`{"test": 2432232314}`)),
		s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, []byte(`{"test": 2432232314}`)),
		s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232315}`)),
	} {
		if other == got {
			t.Errorf("signature did not change: %q", other)
		}
	}
}

func TestNewSignerRefusesBadSecrets(t *testing.T) {
	for _, tt := range []struct{ secret, want string }{
		{"", "at least 24"},
		{"whsec_not base64!", "not whsec_ followed by base64"},
		{"whsec_" + strings.Repeat("A", 28), "has 21 bytes"}, // 21 bytes decoded
	} {
		if _, err := events.NewSigner(tt.secret); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewSigner(%q) = %v, want an error containing %q", tt.secret, err, tt.want)
		}
	}
	if _, err := events.NewSigner(strings.Repeat("A", 32)); err != nil {
		t.Errorf("a secret without the whsec_ prefix: %v", err)
	}
}

// The body has the documented fields, in a fixed order, and never more.
func TestBody(t *testing.T) {
	uid := uuid.MustParse("6f1c1f3e-2a8b-4c1d-9e7f-0a1b2c3d4e5f")
	at := time.Date(2026, 12, 6, 22, 48, 1, 234_567_000, time.FixedZone("CET", 3600))
	for _, tt := range []struct {
		e    profile.Event
		want string
	}{
		{profile.Event{ID: "1765057681234-0", Type: profile.EventSessionRevoked, Reason: profile.ReasonLogout,
			UserID: uid, SessionID: "abcdefghijklmnopqrstuv", Time: at, Instance: "web-1"},
			`{"id":"1765057681234-0","type":"session.revoked","reason":"logout","user_id":"6f1c1f3e-2a8b-4c1d-9e7f-0a1b2c3d4e5f","session_id":"abcdefghijklmnopqrstuv","time":"2026-12-06T21:48:01.234Z","instance":"web-1"}`},
		{profile.Event{ID: "1765057681234-1", Type: profile.EventProfileReloaded, Reason: profile.ReasonMiss,
			UserID: uid, Time: at, Instance: "web-1", Duration: 0},
			`{"id":"1765057681234-1","type":"profile.reloaded","reason":"miss","user_id":"6f1c1f3e-2a8b-4c1d-9e7f-0a1b2c3d4e5f","time":"2026-12-06T21:48:01.234Z","instance":"web-1","duration_ms":0}`},
	} {
		if got := string(events.Body(tt.e)); got != tt.want {
			t.Errorf("Body:\n got %s\nwant %s", got, tt.want)
		}
	}
}
