// Package sessiontest runs package session's examples and tests against a
// real redis-server, with profilecache's own packages standing in for a
// running profilecache: SignIn logs a demo user in as POST /login does.
// Examples take no *testing.T, so the server is started once per test
// binary by Main.
package sessiontest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/auth"
	"github.com/profilecache/profilecache/internal/redisproc"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// Secret is the SESSION_SECRET of the stand-in profilecache.
const Secret = "sessiontest-secret-0123456789abcdef"

var (
	url string
	mu  sync.Mutex
	pc  *standIn
)

// Main starts redis-server, runs m and stops the server:
//
//	func TestMain(m *testing.M) { os.Exit(sessiontest.Main(m)) }
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sessiontest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "sessiontest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	p, err := redisproc.Start(redisproc.Options{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sessiontest: start redis-server:", err)
		return 1
	}
	defer p.Stop()
	url = "redis://" + p.Addr
	defer func() {
		if pc != nil {
			pc.client.Close()
		}
	}()
	return m.Run()
}

// RedisURL is the test redis-server's URL (profilecache's REDIS_URL).
func RedisURL() string { return url }

// standIn is what a login on profilecache uses: the profile service with
// the demo CRM and the session manager, on one Redis client.
type standIn struct {
	client rueidis.Client
	svc    *profile.Service
	mgr    *auth.Manager
}

// profilecache returns the stand-in, made on first use.
func profilecache() (*standIn, error) {
	mu.Lock()
	defer mu.Unlock()
	if pc != nil {
		return pc, nil
	}
	client, err := redisrepo.NewClient(url, 0)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := redisrepo.NewProfileStore(client, redisrepo.ProfileOptions{Logger: log})
	tokens := redisrepo.NewTokenStore(client, redisrepo.TokenOptions{Logger: log})
	mgr, err := auth.New(auth.Config{Tokens: tokens, Secret: []byte(Secret), Logger: log})
	if err != nil {
		client.Close()
		return nil, err
	}
	svc := profile.NewService(profile.NewMockBackend(0), store, store, profile.Options{Logger: log, Accounts: tokens})
	pc = &standIn{client: client, svc: svc, mgr: mgr}
	return pc, nil
}

// Login is one session made by SignIn.
type Login struct {
	UserID uuid.UUID
	auth.Issued
}

// SignIn logs a demo user (profile.NewMockBackend's accounts) in, loading
// the profile into Redis, as profilecache's login does. Login.Token is the
// session cookie's value, or the Bearer token of POST /api/login.
func SignIn(email, password string) (Login, error) {
	s, err := profilecache()
	if err != nil {
		return Login{}, err
	}
	ctx := context.Background()
	id, fence, err := s.svc.Login(ctx, email, password)
	if err != nil {
		return Login{}, err
	}
	iss, err := s.mgr.Issue(ctx, id, fence, "sessiontest")
	return Login{UserID: id, Issued: iss}, err
}

// SignOut ends the session as profilecache's logout does.
func SignOut(l Login) error {
	s, err := profilecache()
	if err != nil {
		return err
	}
	return s.mgr.Revoke(context.Background(), l.UserID, l.SessionID)
}

// SignOutAll ends every session of the user, as profilecache's logout-all.
func SignOutAll(l Login) error {
	s, err := profilecache()
	if err != nil {
		return err
	}
	_, err = s.mgr.RevokeAll(context.Background(), l.UserID)
	return err
}
