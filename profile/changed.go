package profile

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// ErrBadBackendResponse: the backend answered, but with something that is
// not a valid answer (bad JSON, missing fields, another user's data, an
// unexpected status, an oversized body). Backend adapters wrap it; web maps
// it to 503 with a message that names the backend, never to 500.
var ErrBadBackendResponse = errors.New("invalid response from the backend")

// ProfileChanged tells the cache that the backend's data of userID has
// changed (a CRM webhook). It first waits for a reload that is already under
// way, here or on another instance, because that reload may have read the
// old data; then it drops the cached profile. Every session of the user
// therefore reads the new data next, loaded from the backend once however
// many of them ask. A user without a cached profile costs nothing.
func (s *Service) ProfileChanged(ctx context.Context, userID uuid.UUID) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.WaitTimeout)
	defer cancel()
	locked, err := s.locker.Locked(ctx, userID)
	if err != nil {
		return fmt.Errorf("profile changed: %w", unavailable(err))
	}
	if locked {
		if err := s.waitUnlocked(ctx, userID); err != nil {
			return fmt.Errorf("profile changed: %w", err)
		}
	}
	if err := s.store.Delete(ctx, userID); err != nil {
		return fmt.Errorf("profile changed: drop cached profile: %w", unavailable(err))
	}
	s.opts.Events.Emit(ctx, Event{Type: EventProfileInvalidated, Reason: ReasonProfileChanged, UserID: userID})
	return nil
}

// errNoAccounts: CredentialsChanged or Erase on a Service built without
// Options.Accounts, a wiring mistake.
var errNoAccounts = errors.New("profile: no Accounts configured")

// CredentialsChanged ends every session of the user at once, on every
// instance (a password change or a locked account in the CRM), and says how
// many were live. Logins and reloads in flight are fenced off.
func (s *Service) CredentialsChanged(ctx context.Context, userID uuid.UUID) (int, error) {
	if s.opts.Accounts == nil {
		return 0, errNoAccounts
	}
	// The reason goes with ctx to the store, which records every session
	// it ends.
	n, err := s.opts.Accounts.RevokeAll(WithReason(ctx, ReasonCredentialsChanged), userID)
	if err != nil {
		return 0, fmt.Errorf("credentials changed: %w", unavailable(err))
	}
	return n, nil
}

// Erase deletes everything cached of the user and ends every session (a
// GDPR erasure in the CRM). A reload or login in flight writes nothing
// afterwards: the fence.
func (s *Service) Erase(ctx context.Context, userID uuid.UUID) error {
	if s.opts.Accounts == nil {
		return errNoAccounts
	}
	if err := s.opts.Accounts.Erase(ctx, userID); err != nil {
		return fmt.Errorf("erase: %w", unavailable(err))
	}
	s.opts.Events.Emit(ctx, Event{Type: EventProfileInvalidated, Reason: ReasonErased, UserID: userID})
	return nil
}
