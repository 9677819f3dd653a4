package redisrepo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"
	"golang.org/x/sync/singleflight"

	"github.com/profilecache/profilecache/profile"
)

var (
	_ profile.Store  = (*ProfileStore)(nil)
	_ profile.Locker = (*ProfileStore)(nil)
)

// ProfileOptions configure a ProfileStore. Zero values take the defaults.
type ProfileOptions struct {
	// Prefix starts every key. Default DefaultPrefix ("pc"). No braces.
	Prefix string
	// TTL is PROFILE_TTL: how long a saved profile lives unless read.
	// Reads renew it once half of it has passed. Default 24h.
	TTL time.Duration
	// CacheTTL bounds how long this process keeps a profile key in its
	// client-side cache (Redis invalidates it earlier on change). Default 1m.
	CacheTTL time.Duration
	// Now is the clock for renewal decisions. Default time.Now.
	Now func() time.Time
	// Logger receives warnings that do not fail a call. Default slog.Default().
	Logger *slog.Logger
	// NoRenew: reads never renew the TTL, so that a process that only
	// reads (package session, read-only) writes nothing.
	NoRenew bool
	// Wakeups, when set, wakes the waiters of a reload lock on its release
	// (wake.go); it must be the one given to the client's NewClient. Nil:
	// waiters poll, as they must on a client without client-side caching.
	Wakeups *Wakeups
}

// Defaults of ProfileOptions and TokenOptions.
const (
	DefaultProfileTTL = 24 * time.Hour
	DefaultCacheTTL   = time.Minute
)

// renewTimeout bounds a TTL renewal, which runs detached from the request
// that triggered it so that one cancelled request does not fail the
// renewal for everyone sharing it.
const renewTimeout = 5 * time.Second

// ProfileStore caches profiles in Redis, one generation at a time (see the
// package doc), and holds the per-user reload lock.
type ProfileStore struct {
	client   rueidis.Client
	keys     keyspace
	ttl      time.Duration
	cacheTTL time.Duration
	now      func() time.Time
	log      *slog.Logger
	noRenew  bool
	wake     *Wakeups
	renewals singleflight.Group
}

// NewProfileStore returns a store on client. It panics on a prefix with
// braces, a programming error.
func NewProfileStore(client rueidis.Client, opts ProfileOptions) *ProfileStore {
	s := &ProfileStore{
		client:   client,
		keys:     newKeyspace(opts.Prefix),
		ttl:      orDefault(opts.TTL, DefaultProfileTTL),
		cacheTTL: orDefault(opts.CacheTTL, DefaultCacheTTL),
		now:      opts.Now,
		log:      opts.Logger,
		noRenew:  opts.NoRenew,
		wake:     opts.Wakeups,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// orDefault returns d, or def when d is not positive.
func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Save writes p as a new generation and makes it current; see
// generation.go for why every step is bounded, whatever the size of p.
//
//  1. The new generation's keys are written in batches, each key with its
//     TTL. Nothing points at them yet: readers cannot see them, and if the
//     save dies here they expire by themselves.
//  2. One O(1) script checks the fence and points meta at the new
//     generation: readers switch from the whole old profile to the whole
//     new one at once.
//  3. The replaced generation is deleted in batches. Readers still
//     following the old meta from their client-side cache find keys missing
//     and read meta again (profile_read.go).
//
// If the user's fence is no longer fence, the batches stop, what they wrote
// is deleted, and Save returns an error wrapping profile.ErrFenced. A
// failure after the switch only leaves the old generation to its TTL: it
// is logged, and Save succeeds.
func (s *ProfileStore) Save(ctx context.Context, p *profile.Profile, fence profile.Fence) error {
	if err := checkProfile(p); err != nil {
		return fmt.Errorf("redisrepo: save profile: %w", err)
	}
	uid := p.Basic.ID
	gen := newGen()
	ttl := strconv.FormatInt(s.ttl.Milliseconds(), 10)
	interests := uniq(p.Interests)
	writes := genWrites(s.keys.gen(uid, gen), p, interests)
	if err := s.writeGen(ctx, uid, fence, writes); err != nil {
		return fmt.Errorf("redisrepo: save profile: %w", err)
	}

	now := s.now().UnixMilli()
	m := meta{
		gen:       gen,
		renewed:   now,
		loaded:    now,
		counts:    [len(sections)]int{len(p.Orders), len(p.Invoices), len(p.Inquiries)},
		interests: len(interests),
	}
	for sec := range profile.NumSections {
		m.gens[sec], m.loads[sec] = gen, now
	}
	args := append([]string{gen, ttl, string(fence)}, m.pairs()...)
	old, err := switchScript.Exec(ctx, s.client, []string{s.keys.meta(uid), s.keys.fence(uid)}, args).AsStrSlice()
	switch err = fencedErr(err); {
	case isFenced(err):
		s.discard(ctx, uid, writes)
		return fmt.Errorf("redisrepo: save profile: %w", err)
	case err != nil:
		// The switch may or may not have happened: leave the new
		// generation to its TTL rather than delete what meta may point at.
		return fmt.Errorf("redisrepo: save profile: %w", err)
	}
	// The replaced generations must go even if the caller gives up now.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := dropGens(cctx, s.client, s.keys, uid, old); err != nil {
		s.log.WarnContext(ctx, "redisrepo: delete replaced profile generation; its keys expire by their TTL",
			"user", uid, "err", err)
	}
	return nil
}

// writeGen writes the keys of a new generation in batches, each key with
// its TTL, unless the user's fence moves: then what it wrote is deleted.
// Nothing points at the keys yet: readers cannot see them, and if the
// caller dies here they expire by themselves.
func (s *ProfileStore) writeGen(ctx context.Context, uid uuid.UUID, fence profile.Fence, writes []genWrite) error {
	ttl := strconv.FormatInt(s.ttl.Milliseconds(), 10)
	written := 0
	for _, batch := range batches(writes) {
		if err := writeBatch(ctx, s.client, s.keys.fence(uid), fence, ttl, batch); err != nil {
			s.discard(ctx, uid, writes[:written+len(batch)])
			return err
		}
		written += len(batch)
	}
	return nil
}

// discard deletes the keys of writes, the part of a new generation that a
// failed or fenced save wrote (or may have written: the failing batch too).
// Meta never pointed at them. If Redis is unreachable they expire by their
// TTL, and an erasure's sweep removes them sooner.
func (s *ProfileStore) discard(ctx context.Context, uid uuid.UUID, writes []genWrite) {
	keys := make([]string, len(writes))
	for i, w := range writes {
		keys[i] = w.key
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := unlinkKeys(ctx, s.client, keys); err != nil {
		s.log.WarnContext(ctx, "redisrepo: delete the keys of a failed save; they expire by their TTL",
			"user", uid, "err", err)
	}
}

// Delete removes the user's profile: meta at once, then its generations in
// batches.
func (s *ProfileStore) Delete(ctx context.Context, userID uuid.UUID) error {
	gens, err := dropMetaScript.Exec(ctx, s.client, []string{s.keys.meta(userID)}, nil).AsStrSlice()
	if err == nil {
		err = dropGens(ctx, s.client, s.keys, userID, gens)
	}
	if err != nil {
		return fmt.Errorf("redisrepo: delete profile: %w", err)
	}
	return nil
}

// Version returns the current generation, which every Save replaces, or ""
// without a profile. It reads Redis, not the client-side cache, so that it
// sees a Save made a moment ago.
func (s *ProfileStore) Version(ctx context.Context, userID uuid.UUID) (string, error) {
	gen, err := s.client.Do(ctx, s.client.B().Hget().Key(s.keys.meta(userID)).Field(metaGen).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("redisrepo: profile version: %w", unavailable(err))
	}
	return gen, nil
}

// Loaded returns when the current profile was saved, or the zero time
// without a profile or with a meta written before this was recorded. Like
// Version it reads Redis, not the client-side cache: the refresh cooldown
// must see a save that another instance made a moment ago.
func (s *ProfileStore) Loaded(ctx context.Context, userID uuid.UUID) (time.Time, error) {
	v, err := s.client.Do(ctx, s.client.B().Hget().Key(s.keys.meta(userID)).Field(metaLoaded).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("redisrepo: profile load time: %w", unavailable(err))
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms <= 0 {
		// Garbage says nothing about the age: treat it as old, which at
		// worst allows one refresh.
		s.log.WarnContext(ctx, "unreadable profile load time", "user", userID, "value", v)
		return time.Time{}, nil
	}
	return time.UnixMilli(ms), nil
}

// checkProfile refuses what could not be stored or read back.
func checkProfile(p *profile.Profile) error {
	if p == nil {
		return errors.New("nil profile")
	}
	if p.Basic.ID == uuid.Nil {
		return errors.New("profile has no user id")
	}
	for i, o := range p.Orders {
		if o.ID == "" {
			return fmt.Errorf("order %d has no id", i)
		}
	}
	for i, v := range p.Invoices {
		if v.ID == "" {
			return fmt.Errorf("invoice %d has no id", i)
		}
	}
	for i, q := range p.Inquiries {
		if q.ID == "" {
			return fmt.Errorf("inquiry %d has no id", i)
		}
	}
	return checkTimes(p)
}

// uniq returns ss without duplicates, as the set will hold them, so that
// meta's count matches SCARD.
func uniq(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	out := slices.Clone(ss)
	slices.Sort(out)
	return slices.Compact(out)
}

const genAlphabet = "0123456789abcdefghijklmnopqrstuvwxyz"

// newGen names a generation: 8 base36 characters, 41 bits. It only has to
// differ from the user's previous generation; it is no secret.
func newGen() string {
	var b [8]byte
	for i := range b {
		b[i] = genAlphabet[rand.N(len(genAlphabet))]
	}
	return string(b[:])
}

// execErr reports the first error of a DoMulti(MULTI, ..., EXEC): a command
// refused while queueing, EXEC itself (EXECABORT), or any command inside
// the transaction. Nil replies are answers, not errors.
func execErr(resp []rueidis.RedisResult) error {
	if len(resp) == 0 {
		return errors.New("no reply")
	}
	for i, r := range resp[:len(resp)-1] {
		if err := r.Error(); err != nil {
			return fmt.Errorf("command %d: %w", i, err)
		}
	}
	replies, err := resp[len(resp)-1].ToArray()
	if rueidis.IsRedisNil(err) {
		return errors.New("transaction aborted")
	}
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	for i, r := range replies {
		if err := r.Error(); err != nil && !rueidis.IsRedisNil(err) {
			return fmt.Errorf("command %d in transaction: %w", i+1, err)
		}
	}
	return nil
}
