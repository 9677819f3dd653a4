package redisrepo_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/internal/syncbuf"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// unconfirmed is the warning of a login that fewer replicas confirmed than
// asked for.
const unconfirmed = "login not confirmed by the replicas"

// A login that waits for replicas (REDIS_WAIT_REPLICAS) runs the same
// script on its own connection: a master without replicas answers at once,
// and the session, the cap and the fence work as without the wait, also
// when the master has never seen the script (a replica just promoted).
func TestCreateWaitingWithoutReplicas(t *testing.T) {
	onTargets(t, testCreateWaitingWithoutReplicas)
}

func testCreateWaitingWithoutReplicas(t *testing.T, e env) {
	ctx := context.Background()
	logs := &syncbuf.Buffer{}
	s := redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{
		MaxSessions: 1, FenceTTL: time.Minute,
		WaitReplicas: 1, WaitTimeout: time.Minute, // a wait would show as a warning, and hang
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	// Every node forgets every script: Create sends it in full.
	for _, node := range e.raw.Nodes() {
		if err := node.Do(ctx, node.B().ScriptFlush().Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	uid := uuid.New()
	first := newSession(uid, "first", time.Now())
	mustCreate(t, s, first, time.Hour)
	if got, err := s.Lookup(ctx, uid, first.ID); err != nil || got != first {
		t.Fatalf("Lookup = %+v, %v; want %+v", got, err, first)
	}
	// The cap of 1 ends the first session, at once on this instance.
	mustCreate(t, s, newSession(uid, "second", time.Now().Add(time.Millisecond)), time.Hour)
	_, err := s.Lookup(ctx, uid, first.ID)
	wantNotFound(t, "Lookup of the session the cap ended", err)
	e.wantLive(t, uid, "second")

	if _, err := s.RevokeAll(ctx, uid); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, newSession(uid, "in-flight", time.Now()), time.Hour); !errors.Is(err, profile.ErrFenced) {
		t.Errorf("Create that began before a logout-all = %v, want ErrFenced", err)
	}
	if strings.Contains(logs.String(), unconfirmed) {
		t.Errorf("a master without replicas was waited for:\n%s", logs)
	}
}

// With a replica, a login returns once the replica has its session: WAIT
// on the connection that wrote it. A replica that stalls (SIGSTOP: still
// connected, silent) makes the login wait for WaitTimeout/2 and log that
// it is unconfirmed, and still succeed; a replica that is gone is not
// waited for at all.
func TestCreateWaitsForReplica(t *testing.T) {
	type setup struct {
		client            rueidis.Client
		pause, resume     func()
		kill              func()
		replicaHasSession func(uid uuid.UUID, id string) bool
	}
	for _, tt := range []struct {
		name  string
		start func(t *testing.T, uid uuid.UUID) setup
	}{
		{"single", func(t *testing.T, uid uuid.UUID) setup {
			primary, replica := redistest.Start(t), redistest.Start(t)
			replica.ReplicaOf(t, primary)
			return setup{
				client: primary.Client(t),
				pause:  func() { replica.Pause(t) }, resume: func() { replica.Resume(t) },
				kill: func() {
					replica.Stop()
					waitNoReplica(t, primary.Command)
				},
				replicaHasSession: func(uid uuid.UUID, id string) bool {
					return replica.Command(t, "EXISTS", key(uid, "s", id)) == "1"
				},
			}
		}},
		{"cluster", func(t *testing.T, uid uuid.UUID) setup {
			fc := redistest.StartFailoverCluster(t, 2*time.Second) // no failover: only a replica stalls, shortly
			master := fc.Master(t, fc.KeySlot(t, key(uid, "s", "x")))
			var replica string
			for _, n := range fc.Nodes(t, master.Addr) {
				if !n.Master && n.MasterID == master.ID {
					replica = n.Addr
				}
			}
			return setup{
				client: fc.Client(t),
				pause:  func() { fc.Pause(t, replica) }, resume: func() { fc.Resume(t, replica) },
				kill: func() {
					fc.Kill(t, replica)
					waitNoReplica(t, func(tb testing.TB, args ...string) string { return fc.Command(tb, master.Addr, args...) })
				},
				replicaHasSession: func(uid uuid.UUID, id string) bool {
					return fc.ReplicaRead(t, replica, "EXISTS", key(uid, "s", id)) == "1"
				},
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			uid := uuid.New()
			st := tt.start(t, uid)
			logs := &syncbuf.Buffer{}
			store := func(wait time.Duration) *redisrepo.TokenStore {
				return redisrepo.NewTokenStore(st.client, redisrepo.TokenOptions{
					WaitReplicas: 2, // more than there are: one is waited for
					WaitTimeout:  wait,
					Logger:       slog.New(slog.NewTextHandler(logs, nil)),
				})
			}
			// A healthy replica confirms as soon as it has the write; the
			// patient store's long timeout only keeps a loaded machine from
			// turning a slow acknowledgement into a missing one.
			patient, s := store(time.Minute), store(time.Second)

			for i, id := range []string{"a", "b", "c"} {
				mustCreate(t, patient, newSession(uid, id, time.Now()), time.Hour)
				// No polling: the replica confirmed before Create returned.
				if !st.replicaHasSession(uid, id) {
					t.Errorf("login %d: the replica lacks the session when Create returns", i)
				}
			}
			if strings.Contains(logs.String(), unconfirmed) {
				t.Fatalf("warning with a healthy replica:\n%s", logs)
			}

			st.pause()
			mustCreate(t, s, newSession(uid, "stalled", time.Now()), time.Hour)
			if !strings.Contains(logs.String(), unconfirmed) || !strings.Contains(logs.String(), "replicas_confirmed=0") {
				t.Errorf("no warning about the unconfirmed login while the replica stalled:\n%s", logs)
			}
			st.resume()

			st.kill()
			mark := len(logs.String())
			mustCreate(t, s, newSession(uid, "alone", time.Now()), time.Hour)
			if strings.Contains(logs.String()[mark:], unconfirmed) {
				t.Errorf("the master waited for a replica it no longer has:\n%s", logs)
			}
			if got, err := s.Lookup(ctx, uid, "alone"); err != nil || got.ID != "alone" {
				t.Errorf("Lookup after a login without replica = %+v, %v", got, err)
			}
		})
	}
}

// waitNoReplica waits until the master that command talks to has seen its
// replica go: a killed process's connections close at once, but the
// master notices on its next turn of the event loop.
func waitNoReplica(t *testing.T, command func(tb testing.TB, args ...string) string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(command(t, "INFO", "replication"), "connected_slaves:0") {
		if time.Now().After(deadline) {
			t.Fatal("the master still lists its killed replica")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
