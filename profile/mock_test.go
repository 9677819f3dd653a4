package profile_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/profile"
)

func TestMockBackendAuthenticate(t *testing.T) {
	b := profile.NewMockBackend(0)
	tests := []struct {
		name, email, password string
		wantErr               error
	}{
		{"OK", "alice@example.com", "alice-secret", nil},
		{"CaseAndSpaceInsensitiveEmail", "  Alice@Example.COM ", "alice-secret", nil},
		{"WrongPassword", "alice@example.com", "bob-secret", profile.ErrInvalidCredentials},
		{"UnknownEmail", "mallory@example.com", "alice-secret", profile.ErrInvalidCredentials},
		{"EmptyPassword", "bob@example.com", "", profile.ErrInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := b.Authenticate(context.Background(), tt.email, tt.password)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err=%v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && id != profile.DemoUserID("alice@example.com") && id != profile.DemoUserID("bob@example.com") {
				t.Fatalf("id=%v, want a demo user id", id)
			}
			if tt.wantErr != nil && id != uuid.Nil {
				t.Fatalf("id=%v on failure, want nil uuid", id)
			}
		})
	}
}

// The demo data is the contract's: counts per account, identical on every
// run and every instance, non-ASCII text included.
func TestMockBackendDemoData(t *testing.T) {
	ctx := context.Background()
	for _, a := range profile.DemoAccounts {
		t.Run(a.Email, func(t *testing.T) {
			id := profile.DemoUserID(a.Email)
			p1 := loadAll(t, profile.NewMockBackend(0), id)
			p2 := loadAll(t, profile.NewMockBackend(0), id)
			if !reflect.DeepEqual(p1, p2) {
				t.Fatal("two backends returned different data for the same user")
			}
			if got, want := len(p1.Orders), a.Orders; got != want {
				t.Errorf("orders=%d, want %d", got, want)
			}
			if got, want := len(p1.Invoices), a.Invoices; got != want {
				t.Errorf("invoices=%d, want %d", got, want)
			}
			if got, want := len(p1.Inquiries), a.Inquiries; got != want {
				t.Errorf("inquiries=%d, want %d", got, want)
			}
			if got, want := len(p1.Interests), a.Interests; got != want {
				t.Errorf("interests=%d, want %d", got, want)
			}
			if p1.Basic.ID != id || p1.Basic.Email != a.Email {
				t.Errorf("basic=%+v, want id %v email %s", p1.Basic, id, a.Email)
			}
			seen := map[string]bool{}
			for i, o := range p1.Orders {
				if seen[o.ID] {
					t.Fatalf("duplicate order id %s", o.ID)
				}
				seen[o.ID] = true
				if i > 0 && o.Date.After(p1.Orders[i-1].Date) {
					t.Fatalf("orders not newest first at %d", i)
				}
			}
		})
	}
	if _, err := profile.NewMockBackend(0).LoadBasic(ctx, uuid.New()); !errors.Is(err, profile.ErrNotFound) {
		t.Fatalf("unknown user: err=%v, want ErrNotFound", err)
	}
}

func TestMockBackendLatencyHonoursContext(t *testing.T) {
	b := profile.NewMockBackend(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.LoadBasic(ctx, profile.DemoUserID("alice@example.com")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err=%v, want context.Canceled", err)
	}
}

func loadAll(t *testing.T, b *profile.MockBackend, id uuid.UUID) profile.Profile {
	t.Helper()
	p, err := profile.Fetch(context.Background(), b, id)
	if err != nil {
		t.Fatal(err)
	}
	return *p
}
