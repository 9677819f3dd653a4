package redisrepo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/profile"
)

// Session token hash fields.
const (
	sessUID     = "uid"
	sessCreated = "created" // unix ms
	sessSeen    = "seen"    // unix ms
	sessUA      = "ua"
)

// Defaults of TokenOptions.
const (
	// DefaultIndexTTL is the default session max age (SESSION_MAX_AGE).
	DefaultIndexTTL = 12 * time.Hour
	// DefaultMaxSessions is the default MAX_SESSIONS_PER_USER.
	DefaultMaxSessions = 20
	// DefaultMaxDataBytes is the default SESSION_DATA_MAX_BYTES.
	DefaultMaxDataBytes = 256 << 10
)

// TokenOptions configure a TokenStore. Zero values take the defaults.
type TokenOptions struct {
	// Prefix starts every key. Default DefaultPrefix ("pc"). No braces.
	Prefix string
	// IndexTTL is the absolute session max age (SESSION_MAX_AGE): index
	// entries older than that are pruned with their keys, the index itself
	// expires that long plus the token TTL after the user's last login,
	// and Lookup refuses older sessions.
	// Default 12h.
	IndexTTL time.Duration
	// CacheTTL bounds how long this process keeps a token in its
	// client-side cache (Redis invalidates it earlier on change). Default 1m.
	CacheTTL time.Duration
	// Now is the clock for created/max-age decisions. Default time.Now.
	Now func() time.Time
	// FenceTTL is how long the fence that RevokeAll and Erase raise lives
	// (fence.go): longer than any login or request. Default DefaultFenceTTL.
	FenceTTL time.Duration
	// MaxSessions caps the sessions of one user (MAX_SESSIONS_PER_USER): a
	// login beyond it ends the user's least recently seen sessions in the
	// same atomic step. Default DefaultMaxSessions.
	MaxSessions int
	// MaxDataBytes is one session's data budget (SESSION_DATA_MAX_BYTES):
	// key bytes plus value bytes over all of its entries. Default
	// DefaultMaxDataBytes.
	MaxDataBytes int
	// WaitReplicas (REDIS_WAIT_REPLICAS): when positive, Create returns
	// only once this many replicas of the user's master confirm the new
	// session (WAIT), or as many as the master has online if fewer, so
	// that a completed login survives a failover. 0 (the default): no
	// wait; replication is asynchronous (replicas.go).
	WaitReplicas int
	// WaitTimeout bounds a Create that waits for replicas, round trips
	// included (REDIS_TIMEOUT); WAIT itself gets half of it. Default
	// DefaultWaitTimeout.
	WaitTimeout time.Duration
	// Logger receives the warning about a login that fewer replicas
	// confirmed than asked for. Default slog.Default().
	Logger *slog.Logger
	// Events records every session this store creates or ends, and every
	// expired one it notices (events.go in profile; the reason of an end
	// comes with the call's context, profile.WithReason). Default
	// profile.NoEvents.
	Events profile.Events
}

// TokenStore is the server-side record of sessions (auth.TokenStore) and
// their per-session data. Session ids arrive already hashed.
//
// Not-found contract: a missing, expired or revoked session is an error
// wrapping profile.ErrNotFound; any other error is a system error.
type TokenStore struct {
	client       rueidis.Client
	keys         keyspace
	indexTTL     time.Duration
	cacheTTL     time.Duration
	fenceTTL     time.Duration
	now          func() time.Time
	maxSessions  int
	maxDataBytes int
	waitReplicas int
	waitTimeout  time.Duration
	log          *slog.Logger
	events       profile.Events
	revoked      revokedSet
}

// NewTokenStore returns a store on client. It panics on a prefix with
// braces, a programming error.
func NewTokenStore(client rueidis.Client, opts TokenOptions) *TokenStore {
	t := &TokenStore{
		client:       client,
		keys:         newKeyspace(opts.Prefix),
		indexTTL:     orDefault(opts.IndexTTL, DefaultIndexTTL),
		cacheTTL:     orDefault(opts.CacheTTL, DefaultCacheTTL),
		fenceTTL:     orDefault(opts.FenceTTL, DefaultFenceTTL),
		now:          opts.Now,
		maxSessions:  positiveOr(opts.MaxSessions, DefaultMaxSessions),
		maxDataBytes: positiveOr(opts.MaxDataBytes, DefaultMaxDataBytes),
		waitReplicas: max(opts.WaitReplicas, 0),
		waitTimeout:  orDefault(opts.WaitTimeout, DefaultWaitTimeout),
		log:          opts.Logger,
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.log == nil {
		t.log = slog.Default()
	}
	t.events = opts.Events
	if t.events == nil {
		t.events = profile.NoEvents{}
	}
	return t
}

// Create stores s with an idle expiry of ttl and indexes it, in one atomic
// Lua call that also keeps the user's index exact and bounded: it drops
// entries past the max age and entries whose session is gone, and when
// the user then has more than MaxSessions sessions it ends the least
// recently seen others (never s), with their data. If the user's fence has
// moved from s.Fence (a logout-all or an erasure since the login began),
// nothing is written and the error wraps profile.ErrFenced. Created and
// LastSeen default to now. With WaitReplicas, it also waits for replicas
// to confirm the session (replicas.go).
func (t *TokenStore) Create(ctx context.Context, s profile.Session, ttl time.Duration) error {
	if err := cmp.Or(checkSessionID(s.UserID, s.ID), checkTTL(ttl)); err != nil {
		return fmt.Errorf("redisrepo: create session: %w", err)
	}
	now := t.now()
	if s.Created.IsZero() {
		s.Created = now
	}
	if s.LastSeen.IsZero() {
		s.LastSeen = s.Created
	}
	ms := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
	keys := []string{t.keys.session(s.UserID, s.ID), t.keys.sessions(s.UserID), t.keys.fence(s.UserID)}
	args := []string{
		s.ID, s.UserID.String(), ms(s.Created), ms(s.LastSeen), s.UserAgent,
		strconv.FormatInt(ttl.Milliseconds(), 10),
		// Sessions created before this are dead, however active.
		ms(now.Add(-t.indexTTL)),
		// The index outlives every token it lists (a token lives at
		// most max age + ttl), so that no token of the user's is ever
		// outside it, and outside the cap.
		strconv.FormatInt((t.indexTTL + ttl).Milliseconds(), 10),
		strconv.Itoa(t.maxSessions),
		t.keys.sessionPrefix(s.UserID), dataSuffix,
		string(s.Fence),
	}
	var ended createReply
	var err error
	if t.waitReplicas > 0 {
		// ended is set even when only the wait failed.
		ended, err = t.createReplicated(ctx, s.UserID, keys, args)
	} else {
		ended, err = parseCreateReply(createScript.Exec(ctx, t.client, keys, args))
	}
	// Ended here: refuse them at once on this instance, whose client-side
	// cache may still hold them for a few ms (revoked.go).
	t.revoked.add(ended.limit...)
	t.revoked.add(ended.aged...)
	t.events.Emit(ctx, ended.events(s, err == nil)...)
	if err != nil {
		return fmt.Errorf("redisrepo: create session: %w", fencedErr(err))
	}
	t.revoked.forget(s.ID)
	return nil
}

// createReply is what createScript ended besides creating the session.
type createReply struct {
	limit []string // over MaxSessions
	aged  []string // alive past the max age
	gone  []string // their token had expired
}

// events are the events of a create of s, in the order the script did
// it: expired sessions out, s in (if created), then the least recently
// seen ones over the cap.
func (c createReply) events(s profile.Session, created bool) []profile.Event {
	evs := sessionEvents(nil, s.UserID, profile.EventSessionTimedOut, profile.ReasonIdle, c.gone)
	evs = sessionEvents(evs, s.UserID, profile.EventSessionTimedOut, profile.ReasonAbsolute, c.aged)
	if created {
		evs = sessionEvents(evs, s.UserID, profile.EventSessionCreated, profile.ReasonLogin, []string{s.ID})
	}
	return sessionEvents(evs, s.UserID, profile.EventSessionRevoked, profile.ReasonLimit, c.limit)
}

func parseCreateReply(r rueidis.RedisResult) (createReply, error) {
	var c createReply
	parts, err := r.ToArray()
	if err == nil && len(parts) != 3 {
		err = fmt.Errorf("%d elements in the reply, want 3", len(parts))
	}
	if err != nil {
		return c, err
	}
	for i, dst := range []*[]string{&c.limit, &c.aged, &c.gone} {
		if *dst, err = parts[i].AsStrSlice(); err != nil {
			return createReply{}, fmt.Errorf("reply element %d: %w", i, err)
		}
	}
	return c, nil
}

// sessionEvents appends one event per session id to evs.
func sessionEvents(evs []profile.Event, userID uuid.UUID, typ, reason string, ids []string) []profile.Event {
	for _, id := range ids {
		evs = append(evs, profile.Event{Type: typ, Reason: reason, UserID: userID, SessionID: id})
	}
	return evs
}

// endedEvents are the events of sessions a revocation found: the live ones
// ended for reason (a timed-out one if reason is idle or absolute), the
// others had expired.
func endedEvents(userID uuid.UUID, reason string, live, all []string) []profile.Event {
	typ := profile.EventSessionRevoked
	if reason == profile.ReasonIdle || reason == profile.ReasonAbsolute {
		typ = profile.EventSessionTimedOut
	}
	evs := sessionEvents(nil, userID, typ, reason, live)
	for _, id := range all {
		if !slices.Contains(live, id) {
			evs = sessionEvents(evs, userID, profile.EventSessionTimedOut, profile.ReasonIdle, []string{id})
		}
	}
	return evs
}

// errPastMaxAge: a session alive in Redis but older than the max age.
var errPastMaxAge = errors.New("past the max age")

// Lookup returns the session through the client-side cache: a hot session
// costs no round trip, and Redis invalidates the entry when the session
// changes or goes.
func (t *TokenStore) Lookup(ctx context.Context, userID uuid.UUID, sessionID string) (profile.Session, error) {
	if t.revoked.has(sessionID) {
		return profile.Session{}, fmt.Errorf("redisrepo: lookup session: revoked: %w", profile.ErrNotFound)
	}
	k := t.keys.session(userID, sessionID)
	r := t.client.DoCache(ctx, t.client.B().Hmget().Key(k).Field(sessionFields...).Cache(), t.cacheTTL)
	if err := r.Error(); err != nil {
		return profile.Session{}, fmt.Errorf("redisrepo: lookup session: %w", err)
	}
	s, err := t.decodeHMGET(userID, sessionID, r)
	if err != nil {
		return profile.Session{}, fmt.Errorf("redisrepo: lookup session: %w", err)
	}
	return s, nil
}

// sessionFields are the token hash's fields in the order decodeFrom reads
// them.
var sessionFields = []string{sessUID, sessCreated, sessSeen, sessUA}

// decode turns a token hash into a live session of userID, or an error
// wrapping profile.ErrNotFound.
func (t *TokenStore) decode(userID uuid.UUID, sessionID string, h map[string]string) (profile.Session, error) {
	if len(h) == 0 {
		return profile.Session{}, profile.ErrNotFound
	}
	return t.decodeFrom(userID, sessionID, &decoder{m: h})
}

// decodeHMGET is decode for the reply of HMGET sessionFields.
func (t *TokenStore) decodeHMGET(userID uuid.UUID, sessionID string, r rueidis.RedisResult) (profile.Session, error) {
	vals, err := r.ToArray()
	if err != nil {
		return profile.Session{}, err
	}
	var d decoder
	if !d.resetHMGET(sessionFields, vals) {
		return profile.Session{}, profile.ErrNotFound
	}
	return t.decodeFrom(userID, sessionID, &d)
}

func (t *TokenStore) decodeFrom(userID uuid.UUID, sessionID string, d *decoder) (profile.Session, error) {
	s := profile.Session{
		ID:        sessionID,
		UserID:    d.uuid(sessUID),
		Created:   time.UnixMilli(d.int(sessCreated)),
		LastSeen:  time.UnixMilli(d.int(sessSeen)),
		UserAgent: d.str(sessUA),
	}
	switch {
	case d.err != nil:
		return profile.Session{}, fmt.Errorf("%w (%w)", profile.ErrNotFound, d.err)
	case s.UserID != userID:
		return profile.Session{}, fmt.Errorf("session of another user: %w", profile.ErrNotFound)
	case t.now().Sub(s.Created) > t.indexTTL:
		return profile.Session{}, fmt.Errorf("session older than %v: %w: %w", t.indexTTL, errPastMaxAge, profile.ErrNotFound)
	}
	return s, nil
}

// Touch records activity and slides the session's and its data's expiry to
// ttl. A gone session stays gone: the error wraps profile.ErrNotFound.
//
// Every Touch changes the token hash and so invalidates its cached copy on
// every instance; callers should touch only when LastSeen is worth
// updating, not on every request.
func (t *TokenStore) Touch(ctx context.Context, userID uuid.UUID, sessionID string, seen time.Time, ttl time.Duration) error {
	if err := cmp.Or(checkSessionID(userID, sessionID), checkTTL(ttl)); err != nil {
		return fmt.Errorf("redisrepo: touch session: %w", err)
	}
	n, err := touchScript.Exec(ctx, t.client,
		[]string{t.keys.session(userID, sessionID), t.keys.sessionData(userID, sessionID)},
		[]string{strconv.FormatInt(seen.UnixMilli(), 10), strconv.FormatInt(ttl.Milliseconds(), 10)},
	).AsInt64()
	if err != nil {
		return fmt.Errorf("redisrepo: touch session: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("redisrepo: touch session: %w", profile.ErrNotFound)
	}
	return nil
}

// Revoke ends one session and its data. It takes effect on this instance at
// once, and on others as soon as Redis's invalidation reaches them.
func (t *TokenStore) Revoke(ctx context.Context, userID uuid.UUID, sessionID string) error {
	// Noted first, so that requests racing with the revocation already fail.
	t.revoked.add(sessionID)
	b := t.client.B()
	resp := t.client.DoMulti(ctx,
		b.Multi().Build(),
		b.Unlink().Key(t.keys.session(userID, sessionID)).Build(),
		b.Unlink().Key(t.keys.sessionData(userID, sessionID)).Build(),
		b.Zrem().Key(t.keys.sessions(userID)).Member(sessionID).Build(),
		b.Exec().Build(),
	)
	err := execErr(resp)
	if err != nil {
		// Unconfirmed: the caller answers 503 and the user tries again, so
		// this instance must not quietly refuse a session that still works
		// elsewhere.
		t.revoked.forget(sessionID)
		return fmt.Errorf("redisrepo: revoke session: %w", err)
	}
	// [token unlinked, data unlinked, index entry removed]: only a call
	// that found the session reports it, so a double click reports once.
	replies, _ := resp[len(resp)-1].ToArray() // checked by execErr
	if len(replies) != 3 {
		return nil
	}
	token, _ := replies[0].AsInt64()
	indexed, _ := replies[2].AsInt64()
	var live, all []string
	if token == 1 {
		live = []string{sessionID}
	}
	if token == 1 || indexed == 1 {
		all = []string{sessionID}
	}
	t.events.Emit(ctx, endedEvents(userID, profile.ReasonFrom(ctx, profile.ReasonRevoke), live, all)...)
	return nil
}

// RevokeAll ends every indexed session of the user in one Lua call, which
// also raises the user's fence, and returns how many were still alive.
func (t *TokenStore) RevokeAll(ctx context.Context, userID uuid.UUID) (int, error) {
	reply, err := revokeAllScript.Exec(ctx, t.client,
		[]string{t.keys.sessions(userID), t.keys.fence(userID)},
		[]string{t.keys.sessionPrefix(userID), dataSuffix, newFence(fenceRevoked), strconv.FormatInt(t.fenceTTL.Milliseconds(), 10)},
	).ToArray()
	if err == nil && len(reply) != 3 {
		err = fmt.Errorf("unexpected reply of %d elements", len(reply))
	}
	if err != nil {
		return 0, fmt.Errorf("redisrepo: revoke all sessions: %w", err)
	}
	live, err := reply[0].AsInt64()
	if err != nil {
		return 0, fmt.Errorf("redisrepo: revoke all sessions: %w", err)
	}
	ids, err := reply[1].AsStrSlice()
	if err != nil {
		return 0, fmt.Errorf("redisrepo: revoke all sessions: %w", err)
	}
	// All of them, not just the live ones: one deleted a moment ago by
	// another instance may still sit in this client's cache.
	t.revoked.add(ids...)
	liveIDs, err := reply[2].AsStrSlice()
	if err != nil {
		return 0, fmt.Errorf("redisrepo: revoke all sessions: %w", err)
	}
	t.events.Emit(ctx, endedEvents(userID, profile.ReasonFrom(ctx, profile.ReasonLogoutAll), liveIDs, ids)...)
	return int(live), nil
}

// Erase deletes every key of the user: one bounded Lua call raises the
// erasure fence and deletes the sessions, their data, the index, the
// profile's meta and the reload lock; then the generations meta pointed at
// goes in batches, and a sweep removes anything else of the user. The fence
// stays for FenceTTL, so that nothing in flight writes the user back.
func (t *TokenStore) Erase(ctx context.Context, userID uuid.UUID) error {
	if userID == uuid.Nil {
		return errors.New("redisrepo: erase user: no user id")
	}
	reply, err := eraseScript.Exec(ctx, t.client,
		[]string{t.keys.sessions(userID), t.keys.fence(userID), t.keys.meta(userID), t.keys.lock(userID)},
		[]string{t.keys.sessionPrefix(userID), dataSuffix, newFence(fenceErased),
			strconv.FormatInt(t.fenceTTL.Milliseconds(), 10)},
	).ToArray()
	if err == nil && len(reply) != 3 {
		err = fmt.Errorf("%d elements in the reply, want 3", len(reply))
	}
	if err != nil {
		return fmt.Errorf("redisrepo: erase user: %w", err)
	}
	ids, err := reply[0].AsStrSlice()
	if err != nil {
		return fmt.Errorf("redisrepo: erase user: %w", err)
	}
	t.revoked.add(ids...)
	liveIDs, err := reply[2].AsStrSlice()
	if err != nil {
		return fmt.Errorf("redisrepo: erase user: %w", err)
	}
	t.events.Emit(ctx, endedEvents(userID, profile.ReasonErased, liveIDs, ids)...)
	gens, err := reply[1].AsStrSlice()
	if err != nil {
		return fmt.Errorf("redisrepo: erase user: %w", err)
	}
	if err := dropGens(ctx, t.client, t.keys, userID, gens); err != nil {
		return fmt.Errorf("redisrepo: erase user: profile: %w", err)
	}
	if err := sweepUser(ctx, t.client, t.keys, userID); err != nil {
		return fmt.Errorf("redisrepo: erase user: %w", err)
	}
	return nil
}

// List returns the user's live sessions, most recently seen first. Index
// entries whose session has expired are pruned on the way.
func (t *TokenStore) List(ctx context.Context, userID uuid.UUID) ([]profile.Session, error) {
	b := t.client.B()
	idx := t.keys.sessions(userID)
	ids, err := t.client.Do(ctx, b.Zrange().Key(idx).Min("0").Max("-1").Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("redisrepo: list sessions: %w", err)
	}
	out := make([]profile.Session, 0, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cmds := make(rueidis.Commands, len(ids))
	for i, id := range ids {
		cmds[i] = b.Hmget().Key(t.keys.session(userID, id)).Field(sessionFields...).Build()
	}
	var gone []string
	aged := map[string]bool{}
	for i, r := range t.client.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return nil, fmt.Errorf("redisrepo: list sessions: %w", err)
		}
		s, err := t.decodeHMGET(userID, ids[i], r)
		switch {
		case err != nil:
			gone = append(gone, ids[i])
			aged[ids[i]] = errors.Is(err, errPastMaxAge)
		case t.revoked.has(ids[i]):
			// Revoked here a moment ago; Redis has it gone already.
		default:
			out = append(out, s)
		}
	}
	if err := t.prune(ctx, userID, gone, aged); err != nil {
		return nil, fmt.Errorf("redisrepo: list sessions: %w", err)
	}
	slices.SortFunc(out, func(x, y profile.Session) int {
		return cmp.Or(y.LastSeen.Compare(x.LastSeen), y.Created.Compare(x.Created), cmp.Compare(x.ID, y.ID))
	})
	return out, nil
}

// prune removes index entries of sessions that are over: expired, or alive
// past the max age (aged). One ZREM each, so that only the call that
// removes an entry reports its timeout, however many List at once.
func (t *TokenStore) prune(ctx context.Context, userID uuid.UUID, gone []string, aged map[string]bool) error {
	if len(gone) == 0 {
		return nil
	}
	b := t.client.B()
	cmds := make(rueidis.Commands, len(gone))
	for i, id := range gone {
		cmds[i] = b.Zrem().Key(t.keys.sessions(userID)).Member(id).Build()
	}
	var evs []profile.Event
	for i, r := range t.client.DoMulti(ctx, cmds...) {
		n, err := r.AsInt64()
		if err != nil {
			t.events.Emit(ctx, evs...)
			return fmt.Errorf("prune index: %w", err)
		}
		if n == 1 {
			reason := profile.ReasonIdle
			if aged[gone[i]] {
				reason = profile.ReasonAbsolute
			}
			evs = sessionEvents(evs, userID, profile.EventSessionTimedOut, reason, gone[i:i+1])
		}
	}
	t.events.Emit(ctx, evs...)
	return nil
}

func positiveOr(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// checkSessionID refuses ids the key layout cannot hold.
func checkSessionID(userID uuid.UUID, sessionID string) error {
	switch {
	case userID == uuid.Nil:
		return errors.New("no user id")
	case sessionID == "":
		return errors.New("no session id")
	case strings.ContainsRune(sessionID, ':'):
		// "x:data" would name the data key of session x.
		return errors.New("session id contains ':'")
	}
	return nil
}

// checkTTL refuses what PEXPIRE cannot express.
func checkTTL(ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("ttl %v below 1ms", ttl)
	}
	return nil
}
