package profile_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
)

// ProfileChanged drops the cached profile; the next read loads it once.
func TestProfileChanged(t *testing.T) { redistest.Targets(t, testProfileChanged) }

func testProfileChanged(t *testing.T, srv redistest.Target) {
	b := newCountingBackend(0)
	svc, store := newService(t, srv, b, profile.Options{})
	ctx := context.Background()
	if err := svc.ProfileChanged(ctx, uuid.New()); err != nil {
		t.Fatalf("nothing cached: err=%v, want nil", err)
	}
	if err := svc.Refresh(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if err := svc.ProfileChanged(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Read(ctx, alice, profile.Query{Basic: true}); !errors.Is(err, profile.ErrNotFound) {
		t.Fatalf("store after ProfileChanged: err=%v, want ErrNotFound", err)
	}
	loads := b.loads.Load()
	if _, err := svc.Read(ctx, alice, profile.Query{Basic: true}); err != nil {
		t.Fatal(err)
	}
	if got := b.loads.Load() - loads; got != 1 {
		t.Fatalf("backend loads after the change=%d, want 1", got)
	}
}

// A reload already under way (here on another instance) may have read the
// old data: ProfileChanged waits for it, so that its save cannot land after
// the drop and bring the old data back.
func TestProfileChangedWaitsForRunningReload(t *testing.T) {
	redistest.Targets(t, testProfileChangedWaitsForRunningReload)
}

func testProfileChangedWaitsForRunningReload(t *testing.T, srv redistest.Target) {
	b := newCountingBackend(0)
	svc, store := newService(t, srv, b, profile.Options{})
	other, _ := newService(t, srv, b, profile.Options{})
	ctx := context.Background()
	if err := svc.Refresh(ctx, alice); err != nil {
		t.Fatal(err)
	}
	b.gate = make(chan struct{})
	reloaded := make(chan error, 1)
	go func() { reloaded <- other.Refresh(ctx, alice) }()
	<-b.entered // the other instance holds the reload lock, its data read

	changed := make(chan error, 1)
	go func() { changed <- svc.ProfileChanged(ctx, alice) }()
	select {
	case err := <-changed:
		t.Fatalf("ProfileChanged returned (err=%v) while a reload with old data was still running", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(b.gate)
	if err := <-reloaded; err != nil {
		t.Fatal(err)
	}
	if err := <-changed; err != nil {
		t.Fatal(err)
	}
	if _, err := store.Read(ctx, alice, profile.Query{Basic: true}); !errors.Is(err, profile.ErrNotFound) {
		t.Fatalf("store after the change: err=%v, want ErrNotFound (the old reload's save must not survive)", err)
	}
}
