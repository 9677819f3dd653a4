package profile_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
)

// failingBackend is the demo CRM with one failure injected.
type failingBackend struct {
	*profile.MockBackend
	authErr   error // Authenticate fails with it
	authHang  bool  // Authenticate waits for its context
	ordersErr error // LoadOrders fails with it
	wrongUser bool  // LoadBasic answers another user's data
}

func (b *failingBackend) Authenticate(ctx context.Context, email, password string) (uuid.UUID, error) {
	if b.authHang {
		<-ctx.Done()
		return uuid.Nil, ctx.Err()
	}
	if b.authErr != nil {
		return uuid.Nil, b.authErr
	}
	// Skip bcrypt: these tests are about what follows the credential check.
	return profile.DemoUserID(email), nil
}

func (b *failingBackend) LoadOrders(ctx context.Context, id uuid.UUID) ([]profile.Order, error) {
	if b.ordersErr != nil {
		return nil, b.ordersErr
	}
	return b.MockBackend.LoadOrders(ctx, id)
}

func (b *failingBackend) LoadBasic(ctx context.Context, id uuid.UUID) (profile.Basic, error) {
	basic, err := b.MockBackend.LoadBasic(ctx, id)
	if b.wrongUser {
		basic.ID = uuid.New()
	}
	return basic, err
}

// A CRM that fails or lies during login makes the login fail with
// ErrUnavailable (503) and leaves nothing half-done in Redis: no profile
// keys, no reload lock. (No session either: the session is issued only
// after Login succeeds.)
func TestServiceLoginBackendFailure(t *testing.T) {
	redistest.Targets(t, testServiceLoginBackendFailure)
}

func testServiceLoginBackendFailure(t *testing.T, srv redistest.Target) {
	raw := srv.Client(t, func(o *rueidis.ClientOption) { o.DisableCache = true })
	for _, tt := range []struct {
		name    string
		backend *failingBackend
	}{
		{"CredentialCheckFails", &failingBackend{authErr: errors.New("crm: 502 bad gateway")}},
		{"CredentialCheckHangs", &failingBackend{authHang: true}},
		{"OneSectionFails", &failingBackend{ordersErr: errors.New("crm: orders: connection reset")}},
		{"AnotherUsersData", &failingBackend{wrongUser: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.backend.MockBackend = profile.NewMockBackend(0)
			svc, _ := newService(t, srv, tt.backend, profile.Options{BackendTimeout: 200 * time.Millisecond})
			done := make(chan error, 1)
			go func() {
				_, _, err := svc.Login(context.Background(), "alice@example.com", "alice-secret")
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second): // a sanity bound, far above BackendTimeout
				t.Fatal("Login still running after 20s: the backend timeout does not bound it")
			}
			if !errors.Is(err, profile.ErrUnavailable) || errors.Is(err, profile.ErrInvalidCredentials) {
				t.Fatalf("Login error = %v, want ErrUnavailable", err)
			}
			if keys := redistest.Keys(t, raw, "*{u:"+alice.String()+"}*"); len(keys) != 0 {
				t.Errorf("a failed login left keys: %v", keys)
			}
		})
	}
}

// brokenStore fails every Read with err, as a store whose Redis is gone.
type brokenStore struct {
	profile.Store
	err error
}

func (b brokenStore) Read(context.Context, uuid.UUID, profile.Query) (profile.View, error) {
	return profile.View{}, b.err
}

// A store that cannot answer is an outage (503), never an internal error
// (500), and never a reason to hit the backend.
func TestServiceReadStoreDown(t *testing.T) {
	b := &failingBackend{MockBackend: profile.NewMockBackend(0)}
	for _, storeErr := range []error{
		errors.New("redisrepo: read profile: basic: dial tcp 127.0.0.1:6379: connect: connection refused"),
		errors.New("redisrepo: read profile: failed to fetch the cache because EXEC was aborted by redis or connection closed"),
	} {
		svc := profile.NewService(b, brokenStore{err: storeErr}, nil, profile.Options{})
		_, err := svc.Read(context.Background(), alice, profile.Query{Basic: true})
		if !errors.Is(err, profile.ErrUnavailable) {
			t.Errorf("Read with the store down: err = %v, want ErrUnavailable", err)
		}
	}
}

// evictingStore saves fine and never finds anything again: a Redis under
// maxmemory pressure evicting faster than the service fills it.
type evictingStore struct{ profile.Store }

func (evictingStore) Save(context.Context, *profile.Profile, profile.Fence) error { return nil }
func (evictingStore) Fence(context.Context, uuid.UUID) (profile.Fence, error)     { return "", nil }
func (evictingStore) Read(context.Context, uuid.UUID, profile.Query) (profile.View, error) {
	return profile.View{}, profile.ErrNotFound
}

type nopLocker struct{}

func (nopLocker) TryLock(context.Context, uuid.UUID, time.Duration) (func(context.Context) error, bool, error) {
	return func(context.Context) error { return nil }, true, nil
}
func (nopLocker) Locked(context.Context, uuid.UUID) (bool, error) { return false, nil }

func TestServiceReadEvictedRightAfterReload(t *testing.T) {
	b := &failingBackend{MockBackend: profile.NewMockBackend(0)}
	svc := profile.NewService(b, evictingStore{}, nopLocker{}, profile.Options{})
	_, err := svc.Read(context.Background(), alice, profile.Query{Basic: true})
	if !errors.Is(err, profile.ErrUnavailable) || errors.Is(err, profile.ErrNotFound) {
		t.Errorf("err = %v, want ErrUnavailable and not ErrNotFound (which would be a 404)", err)
	}
}
