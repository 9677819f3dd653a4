package redisrepo

import (
	"context"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/profile"
)

// MetaFields are the fields the read path asks HMGET for on meta, for tests
// that probe the client-side cache with the very same command.
var MetaFields = metaFields

// ReadConsistent runs only Read's fallback path (readScript), so that tests
// can hold both paths to the same answers.
func (s *ProfileStore) ReadConsistent(ctx context.Context, userID uuid.UUID, q profile.Query) (profile.View, error) {
	pl, err := newPlan(q)
	if err != nil {
		return profile.View{}, err
	}
	v, _, err := s.readAtomic(ctx, userID, pl)
	return v, err
}

// The bounds of every call the profile store sends (generation.go).
const (
	BatchKeys  = batchKeys
	BatchVals  = batchVals
	ChunkElems = chunkElems
)
