package redisrepo_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// evLine is an event as the tests compare them.
func evLine(e profile.Event) string {
	return strings.TrimSpace(fmt.Sprintf("%s %s %s", e.Type, e.Reason, e.SessionID))
}

func streamLines(t *testing.T, s *redisrepo.EventStream) []string {
	t.Helper()
	evs, err := s.Range(context.Background(), "-", 10_000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, evLine(e))
	}
	return out
}

// wantSessionEvents is what testEventStreamRecordsSessions leaves in the
// stream: type, reason, session.
var wantSessionEvents = []string{
	"session.created login s1",
	"session.created login s2",
	"session.created login s3", "session.revoked limit s1",
	"session.revoked logout s2",
	"session.timed_out idle s3", "session.created login s4",
	"session.created login s5",
	"session.revoked logout_all s4", "session.revoked logout_all s5",
	"session.created login s6",
	"session.revoked credentials_changed s6",
	"session.created login s7",
	"session.created login s8",
	"session.timed_out idle s7",
	"session.timed_out idle s8", "session.created login s9",
	"session.revoked erased s9",
}

// Every session the store creates or ends, and every expired one it
// notices, is in the stream once, in the order it happened, with the
// reason the caller gave.
func TestEventStreamRecordsSessions(t *testing.T) { onTargets(t, testEventStreamRecordsSessions) }

func testEventStreamRecordsSessions(t *testing.T, e env) {
	ctx := context.Background()
	stream := redisrepo.NewEventStream(e.client, redisrepo.EventOptions{Instance: "test-1"})
	tokens := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{MaxSessions: 2, FenceTTL: time.Minute, Events: stream})
	uid := uuid.New()
	t0 := time.Now()
	profiles := newProfileStore(e.client, redisrepo.ProfileOptions{})
	create := func(i int) string {
		// A login reads the fence first: a revoke-all before it raised it.
		fence, err := profiles.Fence(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		s := newSession(uid, fmt.Sprintf("s%d", i), t0.Add(time.Duration(i)*time.Millisecond))
		s.Fence = fence
		mustCreate(t, tokens, s, time.Hour)
		return s.ID
	}
	create(1)
	create(2)
	create(3)     // over the cap of 2: s1, least recently seen, ends
	for range 2 { // the second finds nothing: no second event
		if err := tokens.Revoke(profile.WithReason(ctx, profile.ReasonLogout), uid, "s2"); err != nil {
			t.Fatal(err)
		}
	}
	// s3's token expires (as its TTL would make it): the next login notices.
	e.do(t, "DEL", "pc:{u:"+uid.String()+"}:s:s3")
	create(4)
	create(5)
	if _, err := tokens.RevokeAll(ctx, uid); err != nil {
		t.Fatal(err)
	}
	create(6)
	if _, err := tokens.RevokeAll(profile.WithReason(ctx, profile.ReasonCredentialsChanged), uid); err != nil {
		t.Fatal(err)
	}
	create(7)
	create(8)
	if err := tokens.Revoke(profile.WithReason(ctx, profile.ReasonIdle), uid, "s7"); err != nil {
		t.Fatal(err)
	}
	e.do(t, "DEL", "pc:{u:"+uid.String()+"}:s:s8")
	create(9)
	if _, err := tokens.List(ctx, uid); err != nil { // nothing left to notice
		t.Fatal(err)
	}
	if err := tokens.Erase(ctx, uid); err != nil {
		t.Fatal(err)
	}
	if got, want := streamLines(t, stream), wantSessionEvents; !slices.Equal(got, want) {
		t.Fatalf("stream:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	checkEventFields(t, e, stream, uid, t0)
}

// checkEventFields: every entry names uid and the instance, has a time and
// an id, and holds the documented fields only.
func checkEventFields(t *testing.T, e env, stream *redisrepo.EventStream, uid uuid.UUID, t0 time.Time) {
	t.Helper()
	ctx := context.Background()
	evs, _ := stream.Range(ctx, "-", 100)
	for _, ev := range evs {
		if ev.UserID != uid || ev.Instance != "test-1" || ev.Time.Before(t0.Add(-time.Second)) || ev.ID == "" {
			t.Errorf("event %+v: want user %s, instance test-1, a time and an id", ev, uid)
		}
	}
	// What an entry holds: the documented fields, nothing else.
	entries, err := e.raw.Do(ctx, e.raw.B().Xrange().Key(stream.Key()).Start("-").End("+").Build()).AsXRange()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range entries {
		for f := range x.FieldValues {
			if !slices.Contains([]string{"type", "reason", "user_id", "session_id", "time", "instance"}, f) {
				t.Errorf("entry %s has field %q", x.ID, f)
			}
		}
	}
}

// The list of sessions notices expired ones once, however many list.
func TestEventStreamListNoticesExpiry(t *testing.T) { onTargets(t, testEventStreamListNoticesExpiry) }

func testEventStreamListNoticesExpiry(t *testing.T, e env) {
	ctx := context.Background()
	stream := redisrepo.NewEventStream(e.client, redisrepo.EventOptions{Instance: "test-1"})
	tokens := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{Events: stream})
	uid := uuid.New()
	mustCreate(t, tokens, newSession(uid, "a", time.Now()), time.Hour)
	mustCreate(t, tokens, newSession(uid, "b", time.Now()), time.Hour)
	e.do(t, "DEL", "pc:{u:"+uid.String()+"}:s:a")
	for range 3 {
		if _, err := tokens.List(ctx, uid); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"session.created login a", "session.created login b", "session.timed_out idle a"}
	if got := streamLines(t, stream); !slices.Equal(got, want) {
		t.Fatalf("stream %q, want %q", got, want)
	}
}

// XADD trims the stream to about EVENTS_MAX_LEN: Redis trims whole nodes
// of stream-node-max-entries (100), so it may hold up to that many more.
func TestEventStreamIsCapped(t *testing.T) {
	e := newEnv(t)
	stream := redisrepo.NewEventStream(e.client, redisrepo.EventOptions{MaxLen: 50})
	evs := make([]profile.Event, 1000)
	for i := range evs {
		evs[i] = profile.Event{Type: profile.EventProfileInvalidated, Reason: profile.ReasonInvalidate, UserID: uuid.New()}
	}
	stream.Emit(context.Background(), evs...)
	n := e.int(t, "XLEN", stream.Key())
	if n < 50 || n > 50+100 {
		t.Fatalf("XLEN = %d after 1000 events, want 50..150", n)
	}
	last, _ := stream.Range(context.Background(), "-", 1000)
	if got := last[len(last)-1].UserID; got != evs[999].UserID {
		t.Fatalf("the newest entry is of %s, want the last event's %s", got, evs[999].UserID)
	}
}

// The consumer group hands each event to one deliverer; one that stops
// extending its claim loses the events to another.
func TestEventGroupHandsOver(t *testing.T) { onTargets(t, testEventGroupHandsOver) }

func testEventGroupHandsOver(t *testing.T, e env) {
	ctx := context.Background()
	a := redisrepo.NewEventStream(e.client, redisrepo.EventOptions{Instance: "a"})
	b := redisrepo.NewEventStream(e.client, redisrepo.EventOptions{Instance: "b"})
	for _, s := range []*redisrepo.EventStream{a, b, a} { // a second create is fine
		if err := s.EnsureGroup(ctx); err != nil {
			t.Fatal(err)
		}
	}
	uid := uuid.New()
	a.Emit(ctx, profile.Event{Type: profile.EventSessionCreated, Reason: profile.ReasonLogin, UserID: uid, SessionID: "x"},
		profile.Event{Type: profile.EventSessionRevoked, Reason: profile.ReasonLogout, UserID: uid, SessionID: "x"})
	got, err := a.Read(ctx, 16, 10*time.Millisecond)
	if err != nil || len(got) != 2 || evLine(got[1]) != "session.revoked logout x" {
		t.Fatalf("a reads %v, %v; want both events", got, err)
	}
	if more, err := b.Read(ctx, 16, 10*time.Millisecond); err != nil || len(more) != 0 {
		t.Fatalf("b reads %v, %v; want nothing: a has them", more, err)
	}
	if err := a.Extend(ctx, got[0].ID, got[1].ID); err != nil {
		t.Fatal(err)
	}
	if claimed, err := b.Claim(ctx, time.Hour, 16); err != nil || len(claimed) != 0 {
		t.Fatalf("b claims %v, %v; want nothing: a is not idle for an hour", claimed, err)
	}
	claimed, err := b.Claim(ctx, 0, 16)
	if err != nil || len(claimed) != 2 || claimed[0].ID != got[0].ID {
		t.Fatalf("b claims %v, %v; want both of a's events", claimed, err)
	}
	if err := b.Ack(ctx, claimed[0].ID, claimed[1].ID); err != nil {
		t.Fatal(err)
	}
	if again, err := a.Claim(ctx, 0, 16); err != nil || len(again) != 0 {
		t.Fatalf("after the ack a claims %v, %v; want nothing", again, err)
	}
}

// BenchmarkEventEmit reports what one event costs: a round trip per Emit
// (ns/op) and the stream's memory per entry (bytes/event, MEMORY USAGE
// with every node sampled).
func BenchmarkEventEmit(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	stream := redisrepo.NewEventStream(e.client, redisrepo.EventOptions{Instance: "web-1"})
	ev := profile.Event{Type: profile.EventSessionRevoked, Reason: profile.ReasonLogout, UserID: uuid.New(),
		SessionID: "AAAAAAAAAAAAAAAAAAAAAA"}
	for b.Loop() {
		stream.Emit(ctx, ev)
	}
	n := e.int(b, "XLEN", stream.Key())
	mem, err := e.raw.Do(ctx, e.raw.B().Arbitrary("MEMORY", "USAGE").Keys(stream.Key()).Args("SAMPLES", "0").Build()).AsInt64()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(mem)/float64(n), "bytes/event")
}
