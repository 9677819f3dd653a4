package profile

import (
	"context"
	"errors"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// An unknown email must cost the same work as a wrong password, so that
// response times do not tell which emails have accounts: Authenticate
// compares against dummyHash, which must be a real bcrypt hash of the same
// cost as the accounts' hashes. Checked by inspection, not by a stopwatch.
func TestDummyHashCostsTheSame(t *testing.T) {
	dummyCost, err := bcrypt.Cost([]byte(dummyHash))
	if err != nil {
		t.Fatalf("dummyHash is not a bcrypt hash: %v", err)
	}
	for _, a := range DemoAccounts {
		cost, err := bcrypt.Cost([]byte(a.passwordHash))
		if err != nil {
			t.Fatalf("%s: %v", a.Email, err)
		}
		if cost != dummyCost {
			t.Errorf("%s: bcrypt cost %d, dummy hash cost %d: an unknown email would answer at a different speed", a.Email, cost, dummyCost)
		}
	}
	// And the comparison really runs for unknown emails: even the dummy
	// hash's own password (whatever it is) cannot sign in without an
	// account, and the answer is the same error.
	b := NewMockBackend(0)
	if _, err := b.Authenticate(context.Background(), "nobody@example.com", "anything"); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("unknown email: err = %v, want ErrInvalidCredentials", err)
	}
}
