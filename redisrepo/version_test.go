package redisrepo_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/redisrepo"
)

func TestVersion(t *testing.T) { onTargets(t, testVersion) }

// Version changes with every Save, and is "" without a profile: the Service
// tells a finished reload from a dead owner by it.
func testVersion(t *testing.T, e env) {
	s := newProfileStore(e.client, redisrepo.ProfileOptions{})
	ctx := context.Background()
	uid := uuid.New()
	version := func() string {
		t.Helper()
		v, err := s.Version(ctx, uid)
		if err != nil {
			t.Fatalf("Version: %v", err)
		}
		return v
	}
	if got := version(); got != "" {
		t.Fatalf("Version without a profile = %q, want empty", got)
	}
	p := alice(uid)
	if err := s.Save(ctx, p, ""); err != nil {
		t.Fatal(err)
	}
	v1 := version()
	if v1 == "" {
		t.Fatal("Version after Save is empty")
	}
	if err := s.Save(ctx, p, ""); err != nil {
		t.Fatal(err)
	}
	if v2 := version(); v2 == "" || v2 == v1 {
		t.Fatalf("Version after a second Save = %q, want a new one (first %q)", v2, v1)
	}
	if err := s.Delete(ctx, uid); err != nil {
		t.Fatal(err)
	}
	if got := version(); got != "" {
		t.Fatalf("Version after Delete = %q, want empty", got)
	}
}
