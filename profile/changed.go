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
	return nil
}
