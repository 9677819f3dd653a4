package profile

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
)

// Options tune a Service. Zero values mean the defaults.
type Options struct {
	// BackendTimeout bounds one full profile load. Default 10s.
	BackendTimeout time.Duration
	// WaitTimeout bounds how long a request waits for a reload that another
	// request or instance runs. Default BackendTimeout + 2s.
	WaitTimeout time.Duration
	// PollInterval is how often waiters look whether the reload lock is
	// gone. Default 20ms.
	PollInterval time.Duration
	// OnBackendLoad, when set, observes every full backend load.
	OnBackendLoad func(d time.Duration, err error)
	// OnLockWait, when set, observes every wait for another owner's reload.
	OnLockWait func(d time.Duration)
	// RefreshCooldown refuses a Refresh of a profile that was loaded less
	// than this long ago, with a *TooSoonError and without asking the
	// backend: forced reloads of a big profile are expensive. The load time
	// is kept in the store, so the cooldown holds across instances. Logins,
	// misses and ProfileChanged are not subject to it. Zero: no cooldown
	// (unlike the other options, zero is not a default; cmd's is 10s).
	RefreshCooldown time.Duration
	// Now is the clock the cooldown is measured with. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Accounts ends sessions for CredentialsChanged and Erase; without it
	// those return an error.
	Accounts Accounts
	// Events records every reload that saved a profile and every
	// invalidation (events.go). Default NoEvents.
	Events Events
	// Fresh is the per-section freshness (fresh.go); the zero value is
	// off, today's behaviour. It needs a store that is a SectionStore.
	Fresh Freshness
	// OnSectionReload, when set, observes every section reload that took
	// the section's lock, by outcome (ReloadOK, ...).
	OnSectionReload func(sec Section, outcome string, d time.Duration)
	// OnStale, when set, observes every section served past its window.
	OnStale func(sec Section)
	// OnReadWait, when set, observes every read that waited for the
	// backend, by reason (WaitMiss, WaitStaleMax).
	OnReadWait func(reason string)
	// Tracer, when set, traces full loads, lock waits and section reloads
	// (trace.go). Nil: no spans, at no cost.
	Tracer Tracer
}

// Service is the profile cache: reads go to the store, and a miss reloads the
// profile from the backend once, however many requests (in this process and
// on other instances sharing the store) want it at the same moment. Reads never
// take a lock, so one user's requests are never serialized.
type Service struct {
	backend Backend
	store   Store
	locker  Locker
	opts    Options
	flights singleflight.Group

	// Freshness (fresh.go): the store's section operations, the XFetch
	// draws' seed, the background reloads running here, and their end.
	sections SectionStore
	seed     maphash.Seed
	aheadMu  sync.Mutex
	ahead    map[aheadKey]time.Time // running, or left alone until then
	bg       sync.WaitGroup
	stop     context.CancelFunc
	stopped  context.Context
}

// NewService wires a Service.
func NewService(b Backend, s Store, l Locker, opts Options) *Service {
	if opts.BackendTimeout <= 0 {
		opts.BackendTimeout = 10 * time.Second
	}
	if opts.WaitTimeout <= 0 {
		opts.WaitTimeout = opts.BackendTimeout + 2*time.Second
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 20 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Events == nil {
		opts.Events = NoEvents{}
	}
	sections, _ := s.(SectionStore)
	if opts.Fresh.On() && sections == nil {
		opts.Logger.Warn("profile freshness is off: the store cannot reload sections")
		opts.Fresh = Freshness{}
	}
	svc := &Service{backend: b, store: s, locker: l, opts: opts, sections: sections, seed: maphash.MakeSeed(),
		ahead: map[aheadKey]time.Time{}}
	svc.stopped, svc.stop = context.WithCancel(context.Background())
	return svc
}

// Close stops the background section reloads and waits for them to end.
func (s *Service) Close() {
	s.stop()
	s.bg.Wait()
}

// Login authenticates against the backend and preloads the user's profile,
// so that the pages after login read only the cache. The Fence it returns
// goes into the new session (Session.Fence): should every session of the
// user be ended before that session is created, creating it fails.
func (s *Service) Login(ctx context.Context, email, password string) (uuid.UUID, Fence, error) {
	// A CRM that hangs at sign-in must not hang the login: same bound as a
	// profile load.
	actx, cancel := context.WithTimeout(ctx, s.opts.BackendTimeout)
	id, err := s.backend.Authenticate(actx, email, password)
	cancel()
	if err != nil {
		if errors.Is(err, ErrInvalidCredentials) {
			return uuid.Nil, "", err
		}
		return uuid.Nil, "", fmt.Errorf("login: authenticate: %w", unavailable(err))
	}
	// Read right after the backend said yes: a revocation from here on
	// defeats this login.
	fence, err := s.store.Fence(ctx, id)
	if err != nil {
		return uuid.Nil, "", fmt.Errorf("login: %w", unavailable(err))
	}
	if err := s.reload(WithReason(ctx, ReasonLogin), id, nil, false); err != nil {
		return uuid.Nil, "", fmt.Errorf("login: preload: %w", err)
	}
	return id, fence, nil
}

// Read returns what q asks for, reloading the profile from the backend when
// the store misses any of it.
func (s *Service) Read(ctx context.Context, userID uuid.UUID, q Query) (View, error) {
	for _, p := range []*Page{q.Orders, q.Invoices, q.Inquiries} {
		if p != nil {
			if err := p.Validate(); err != nil {
				return View{}, err
			}
		}
	}
	q.Loads = s.opts.Fresh.On()
	v, err := s.store.Read(ctx, userID, q)
	if err != nil && !errors.Is(err, ErrNotFound) {
		// The store did not answer: an outage (503), not a miss to reload.
		return View{}, fmt.Errorf("read: %w", unavailable(err))
	}
	if err == nil {
		if !s.opts.Fresh.On() {
			return v, nil
		}
		return s.freshen(ctx, userID, q, v)
	}
	return s.readMiss(ctx, userID, q)
}

// readMiss reloads the whole profile, because q found a part of it
// missing, and reads q again.
func (s *Service) readMiss(ctx context.Context, userID uuid.UUID, q Query) (View, error) {
	s.readWaited(WaitMiss)
	if err := s.reload(WithReason(ctx, ReasonMiss), userID, &q, false); err != nil {
		return View{}, err
	}
	v, err := s.store.Read(ctx, userID, q)
	if errors.Is(err, ErrNotFound) {
		// Just reloaded and gone again: the store is evicting faster than we
		// fill it. Say so instead of looping, and as a 503, not a 404.
		return View{}, fmt.Errorf("read after reload: %w: %v", ErrUnavailable, err)
	}
	if err != nil {
		return View{}, fmt.Errorf("read after reload: %w", unavailable(err))
	}
	return v, nil
}

// Refresh reloads the profile from the backend now. Concurrent refreshes of
// one user, here and on other instances, share one backend load; reads go on
// serving the old profile until the new one replaces it atomically. A
// profile younger than RefreshCooldown is not reloaded: the error is a
// *TooSoonError (ErrTooSoon).
func (s *Service) Refresh(ctx context.Context, userID uuid.UUID) error {
	if err := s.tooSoon(ctx, userID); err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	return s.reload(WithReason(ctx, ReasonRefresh), userID, nil, s.opts.RefreshCooldown > 0)
}

// tooSoon returns a *TooSoonError while the stored profile is younger than
// RefreshCooldown, and nil when it is older, absent, or there is no
// cooldown.
func (s *Service) tooSoon(ctx context.Context, userID uuid.UUID) error {
	if s.opts.RefreshCooldown <= 0 {
		return nil
	}
	loaded, err := s.store.Loaded(ctx, userID)
	if err != nil {
		return fmt.Errorf("profile age: %w", unavailable(err))
	}
	if loaded.IsZero() {
		return nil
	}
	wait := s.opts.RefreshCooldown - s.opts.Now().Sub(loaded)
	if wait <= 0 {
		return nil
	}
	// An instance whose clock runs ahead may have stamped the profile in
	// our future: never ask a client to wait longer than the cooldown.
	return &TooSoonError{Wait: min(wait, s.opts.RefreshCooldown)}
}

// Invalidate drops the cached profile; the next read reloads it.
func (s *Service) Invalidate(ctx context.Context, userID uuid.UUID) error {
	if err := s.store.Delete(ctx, userID); err != nil {
		return fmt.Errorf("invalidate: %w", err)
	}
	s.opts.Events.Emit(ctx, Event{Type: EventProfileInvalidated, Reason: ReasonInvalidate, UserID: userID})
	return nil
}

// reload loads the profile from the backend and saves it. With check set, it
// first looks whether someone else has loaded it in the meantime: then the
// miss that brought us here is already healed. Without check (login,
// refresh) it loads, unless cooldown is set (a refresh under a cooldown)
// and a profile younger than the cooldown was saved by the time it holds
// the lock: a refresh that checked the age just before another instance's
// load finished is served by that load instead of starting a second one.
func (s *Service) reload(ctx context.Context, userID uuid.UUID, check *Query, cooldown bool) error {
	key := "refresh:" + userID.String()
	if check != nil {
		key = "miss:" + userID.String()
	}
	// The shared work must not die with the first caller's request, but it is
	// bounded by WaitTimeout; each caller still stops waiting when its own
	// context ends.
	ch := s.flights.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.WaitTimeout)
		defer cancel()
		return nil, s.reloadLocked(fctx, userID, check, cooldown)
	})
	select {
	case <-ctx.Done():
		return fmt.Errorf("reload: %w: %w", ErrUnavailable, ctx.Err())
	case r := <-ch:
		return r.Err
	}
}

func (s *Service) reloadLocked(ctx context.Context, userID uuid.UUID, check *Query, cooldown bool) error {
	// The lock outlives a load that hits BackendTimeout, so no second owner
	// starts while the first may still write.
	lockTTL := s.opts.BackendTimeout + 2*time.Second
	// A forced reload is satisfied by another owner's load only if that
	// load saved: an owner that died leaves the version as it was.
	var before string
	if check == nil {
		v, err := s.store.Version(ctx, userID)
		if err != nil {
			return fmt.Errorf("reload: profile version: %w", unavailable(err))
		}
		before = v
	}
	for {
		release, ok, err := s.locker.TryLock(ctx, userID, lockTTL)
		if err != nil {
			return fmt.Errorf("reload lock: %w", unavailable(err))
		}
		if ok {
			defer func() {
				if err := release(context.WithoutCancel(ctx)); err != nil {
					s.opts.Logger.WarnContext(ctx, "release reload lock", "user", userID, "err", err)
				}
			}()
			if check != nil && s.present(ctx, userID, *check) {
				return nil
			}
			if cooldown {
				var soon *TooSoonError
				if err := s.tooSoon(ctx, userID); errors.As(err, &soon) {
					return nil // loaded after our caller asked: that load serves it
				} else if err != nil {
					return fmt.Errorf("reload: %w", err)
				}
			}
			return s.load(ctx, userID)
		}
		// Another request or instance is loading: wait for it, then look.
		if err := s.waitUnlocked(ctx, userID); err != nil {
			return err
		}
		done, err := s.loadedMeanwhile(ctx, userID, check, before)
		if err != nil || done {
			return err
		}
		// Its owner failed or died: try to take the lock ourselves.
	}
}

// loadedMeanwhile reports whether the owner we waited for did our work: for
// a miss, the data we missed is there now; for a forced reload, a new
// version was saved.
func (s *Service) loadedMeanwhile(ctx context.Context, userID uuid.UUID, check *Query, before string) (bool, error) {
	if check != nil {
		return s.present(ctx, userID, *check), nil
	}
	after, err := s.store.Version(ctx, userID)
	if err != nil {
		return false, fmt.Errorf("reload: profile version: %w", unavailable(err))
	}
	return after != before, nil
}

func (s *Service) present(ctx context.Context, userID uuid.UUID, q Query) bool {
	_, err := s.store.Read(ctx, userID, q)
	return err == nil
}

// waitUnlocked returns once the user's reload lock is free: woken by the
// store when it can (LockWaiter), else by polling.
func (s *Service) waitUnlocked(ctx context.Context, userID uuid.UUID) (err error) {
	start := time.Now()
	ctx, end := s.span(ctx, SpanLockWait, "")
	defer func() {
		end(err)
		if s.opts.OnLockWait != nil {
			s.opts.OnLockWait(time.Since(start))
		}
	}()
	if w, ok := s.locker.(LockWaiter); ok {
		if err := w.WaitUnlocked(ctx, userID); err != nil {
			return fmt.Errorf("wait for reload: %w", unavailable(err))
		}
		return nil
	}
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for reload: %w: %w", ErrUnavailable, ctx.Err())
		case <-t.C:
		}
		locked, err := s.locker.Locked(ctx, userID)
		if err != nil {
			return fmt.Errorf("wait for reload: %w", unavailable(err))
		}
		if !locked {
			return nil
		}
	}
}

// load fetches every section concurrently and saves them as one profile,
// unless every session of the user was ended during the fetch (the fence):
// then the request that wanted it has no session left, and an erased user
// must not come back.
func (s *Service) load(ctx context.Context, userID uuid.UUID) (err error) {
	start := time.Now()
	ctx, end := s.span(ctx, SpanLoad, "")
	defer func() {
		end(err)
		if s.opts.OnBackendLoad != nil {
			s.opts.OnBackendLoad(time.Since(start), err)
		}
	}()
	fence, err := s.store.Fence(ctx, userID)
	if err != nil {
		return fmt.Errorf("load profile: %w", unavailable(err))
	}
	p, err := s.fetch(ctx, userID)
	if err != nil {
		return fmt.Errorf("load profile: %w", unavailable(err))
	}
	if err := s.store.Save(ctx, p, fence); err != nil {
		return fmt.Errorf("save profile: %w", unavailable(err))
	}
	// The reason came with ctx from Login, Read or Refresh: the flight's
	// context keeps the first caller's values.
	s.opts.Events.Emit(ctx, Event{Type: EventProfileReloaded, Reason: ReasonFrom(ctx, ReasonMiss),
		UserID: userID, Duration: time.Since(start)})
	return nil
}

func (s *Service) fetch(ctx context.Context, userID uuid.UUID) (*Profile, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.BackendTimeout)
	defer cancel()
	return Fetch(ctx, s.backend, userID)
}

// Fetch loads the user's whole profile from b, its sections concurrently.
func Fetch(ctx context.Context, b Backend, userID uuid.UUID) (*Profile, error) {
	p := &Profile{}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { p.Basic, err = b.LoadBasic(ctx, userID); return wrap("basic", err) })
	g.Go(func() (err error) { p.Interests, err = b.LoadInterests(ctx, userID); return wrap("interests", err) })
	g.Go(func() (err error) { p.Orders, err = b.LoadOrders(ctx, userID); return wrap("orders", err) })
	g.Go(func() (err error) { p.Invoices, err = b.LoadInvoices(ctx, userID); return wrap("invoices", err) })
	g.Go(func() (err error) { p.Inquiries, err = b.LoadInquiries(ctx, userID); return wrap("inquiries", err) })
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if p.Basic.ID != userID {
		return nil, fmt.Errorf("backend returned basic data of user %s for %s", p.Basic.ID, userID)
	}
	return p, nil
}

func wrap(section string, err error) error {
	if err != nil {
		return fmt.Errorf("load %s: %w", section, err)
	}
	return nil
}

// unavailable marks an infrastructure failure as ErrUnavailable (503) unless
// it already carries a domain meaning.
func unavailable(err error) error {
	if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidCredentials) || errors.Is(err, ErrFenced) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
