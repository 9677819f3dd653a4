package profile

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"time"

	"github.com/google/uuid"
)

// Per-section freshness (issue 12): a read serves what the store holds at
// once; a section older than its window (or about to be, by XFetch) starts
// one background reload of that section, shared by every request and
// instance; a section older than StaleMax, or missing, is reloaded before
// the read answers.

// xfetchBeta is XFetch's beta: 1, the paper's recommendation.
const xfetchBeta = 1.0

// Outcomes of a section reload, as OnSectionReload reports them.
const (
	ReloadOK         = "ok"         // loaded and saved
	ReloadError      = "error"      // the backend or the store failed
	ReloadSuperseded = "superseded" // something newer happened meanwhile: nothing written
	ReloadFenced     = "fenced"     // every session ended meanwhile: nothing written
	ReloadSkipped    = "skipped"    // another instance reloaded it, or the profile is gone
)

// Reasons a read waited for the backend, as OnReadWait reports them.
const (
	WaitMiss     = "miss"      // a part of the profile was missing
	WaitStaleMax = "stale_max" // a section was older than Freshness.StaleMax
)

// freshen applies the freshness rules to v, which the store just returned
// for q: stale sections are marked and reloaded in the background; if a
// section is past StaleMax it is reloaded first and v read again.
func (s *Service) freshen(ctx context.Context, userID uuid.UUID, q Query, v View) (View, error) {
	hard := s.checkSections(ctx, userID, q, &v)
	if len(hard) == 0 {
		return v, nil
	}
	s.readWaited(WaitStaleMax)
	for _, sec := range hard {
		if err := s.reloadSectionNow(ctx, userID, sec, v.Loads[sec].At); err != nil {
			return View{}, fmt.Errorf("reload %s past its stale limit: %w", sec, err)
		}
	}
	v, err := s.store.Read(ctx, userID, q)
	if errors.Is(err, ErrNotFound) {
		// Dropped meanwhile (a webhook, an eviction): reload it whole.
		return s.readMiss(ctx, userID, q)
	}
	if err != nil {
		return View{}, fmt.Errorf("read after reload: %w", unavailable(err))
	}
	s.checkSections(ctx, userID, q, &v)
	return v, nil
}

// checkSections marks v's stale sections, starts their background
// reloads, and returns the sections past StaleMax.
func (s *Service) checkSections(ctx context.Context, userID uuid.UUID, q Query, v *View) (hard []Section) {
	f := s.opts.Fresh
	now := s.opts.Now()
	for sec := range NumSections {
		w := f.Window[sec]
		if w <= 0 || !q.Reads(sec) {
			continue
		}
		ld := v.Loads[sec]
		age := now.Sub(ld.At)
		switch {
		case f.StaleMax > 0 && !ld.At.IsZero() && age > f.StaleMax:
			hard = append(hard, sec)
		case age > w: // an unknown load time counts as stale
			v.Stale = append(v.Stale, sec)
			if s.opts.OnStale != nil {
				s.opts.OnStale(sec)
			}
			s.reloadAhead(ctx, userID, sec, ld)
		case s.early(userID, sec, ld, w, now):
			s.reloadAhead(ctx, userID, sec, ld)
		}
	}
	return hard
}

// early is XFetch's test (Vattani, Chierichetti and Lowenstein, VLDB 2015):
// reload before the window ends when now - delta*beta*ln(u) >= expiry,
// delta being the section's last load time. u is drawn once per instance
// and stored load of the section, not per read: with a fresh draw per read
// the lead grows with ln(reads per delta), and a user read a thousand times
// a second would be reloaded about 2 s early, that is all the time with a
// 2 s window. One draw per instance keeps the lead about delta (1.5 delta
// over two instances), whatever the read rate, and still spreads the
// instances apart.
func (s *Service) early(userID uuid.UUID, sec Section, ld SectionLoad, w time.Duration, now time.Time) bool {
	if ld.Took <= 0 {
		return false
	}
	lead := time.Duration(float64(ld.Took) * xfetchBeta * -math.Log(s.draw(userID, sec, ld.At)))
	return !now.Add(lead).Before(ld.At.Add(w))
}

// draw is a number in (0, 1], uniform, fixed for this instance, user,
// section and load.
func (s *Service) draw(userID uuid.UUID, sec Section, at time.Time) float64 {
	var b [16 + 1 + 8]byte
	copy(b[:16], userID[:])
	b[16] = byte(sec)
	binary.LittleEndian.PutUint64(b[17:], uint64(at.UnixNano()))
	h := maphash.Bytes(s.seed, b[:])
	return float64(h>>11+1) / (1 << 53)
}

// reloadAhead starts a background reload of the section unless one runs in
// this process already, or the last attempt here found the section's lock
// held (another instance reloads it, or a failed reload's backoff runs) a
// moment ago. It never blocks and never fails the read. Its span, in a trace
// of its own, is linked to the span of req, the request that noticed.
func (s *Service) reloadAhead(req context.Context, userID uuid.UUID, sec Section, seen SectionLoad) {
	if s.stopped.Err() != nil {
		return // closing
	}
	key := aheadKey{userID, sec}
	now := time.Now()
	s.aheadMu.Lock()
	if next, ok := s.ahead[key]; ok && now.Before(next) {
		s.aheadMu.Unlock()
		return
	}
	s.ahead[key] = now.Add(s.opts.WaitTimeout) // running
	s.aheadMu.Unlock()
	startSpan := s.linkedSpan(req)
	s.bg.Go(func() {
		var quiet time.Duration
		defer func() { s.aheadDone(key, quiet) }()
		defer func() {
			if r := recover(); r != nil {
				s.opts.Logger.Error("background section reload panicked", "user", userID, "section", sec.String(), "panic", r)
			}
		}()
		// Detached from the request that noticed the staleness, bounded
		// like any reload.
		ctx, cancel := context.WithTimeout(s.stopped, s.opts.WaitTimeout)
		defer cancel()
		ctx, end := startSpan(ctx, SpanSectionReload, sec.String())
		var err error
		quiet, err = s.reloadSection(ctx, userID, sec, seen.At, false)
		end(err)
		if err != nil {
			s.opts.Logger.WarnContext(ctx, "background section reload failed; the cached section is served meanwhile",
				"user", userID, "section", sec.String(), "err", err)
		}
	})
}

type aheadKey struct {
	user uuid.UUID
	sec  Section
}

// aheadDone ends a background reload: the next may start at once, or after
// quiet.
func (s *Service) aheadDone(key aheadKey, quiet time.Duration) {
	s.aheadMu.Lock()
	defer s.aheadMu.Unlock()
	if quiet <= 0 {
		delete(s.ahead, key)
		return
	}
	now := time.Now()
	s.ahead[key] = now.Add(quiet)
	if len(s.ahead) > maxAhead {
		for k, next := range s.ahead {
			if now.After(next) {
				delete(s.ahead, k)
			}
		}
	}
}

// maxAhead bounds the quiet periods remembered before old ones are swept.
const maxAhead = 10_000

// busyQuiet is how long this instance leaves a section alone after finding
// its lock held: the owner's reload commits meanwhile, or its backoff runs.
const busyQuiet = 250 * time.Millisecond

// reloadSectionNow reloads a section before the read answers. Concurrent
// requests in this process share one reload; the reload outlives the first
// caller's request, each caller stops waiting when its own context ends.
func (s *Service) reloadSectionNow(ctx context.Context, userID uuid.UUID, sec Section, seen time.Time) error {
	ch := s.flights.DoChan("section:"+userID.String()+"/"+sec.String(), func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.WaitTimeout)
		defer cancel()
		fctx, end := s.span(fctx, SpanSectionReload, sec.String())
		_, err := s.reloadSection(fctx, userID, sec, seen, true)
		end(err)
		return nil, err
	})
	select {
	case <-ctx.Done():
		return fmt.Errorf("reload %s: %w: %w", sec, ErrUnavailable, ctx.Err())
	case r := <-ch:
		return r.Err
	}
}

// reloadSection reloads one section under its reload lock, unless it was
// reloaded after seen by the time the lock is ours. With wait, a lock held
// by another owner is waited for; without, the other owner's reload is
// taken as ours. retry is how long not to try again: the backoff after a
// failed load, busyQuiet when the lock was held.
func (s *Service) reloadSection(ctx context.Context, userID uuid.UUID, sec Section, seen time.Time, wait bool) (retry time.Duration, err error) {
	lockTTL := s.opts.BackendTimeout + 2*time.Second
	for {
		release, ok, err := s.sections.LockSection(ctx, userID, sec, lockTTL)
		if err != nil {
			return busyQuiet, fmt.Errorf("section reload lock: %w", unavailable(err))
		}
		if ok {
			return s.reloadSectionLocked(ctx, userID, sec, seen, release)
		}
		if !wait {
			return busyQuiet, nil
		}
		wctx, end := s.span(ctx, SpanLockWait, sec.String())
		err = s.sections.WaitSectionUnlocked(wctx, userID, sec)
		end(err)
		if err != nil {
			return 0, fmt.Errorf("wait for section reload: %w", unavailable(err))
		}
	}
}

func (s *Service) reloadSectionLocked(ctx context.Context, userID uuid.UUID, sec Section, seen time.Time, release func(context.Context, time.Duration) error) (hold time.Duration, err error) {
	outcome, start := ReloadSkipped, time.Now()
	defer func() {
		if rerr := release(context.WithoutCancel(ctx), hold); rerr != nil {
			s.opts.Logger.WarnContext(ctx, "release section reload lock", "user", userID, "section", sec.String(), "err", rerr)
		}
		if s.opts.OnSectionReload != nil {
			s.opts.OnSectionReload(sec, outcome, time.Since(start))
		}
	}()
	st, err := s.sections.SectionState(ctx, userID, sec)
	if err != nil {
		outcome = ReloadError
		return 0, fmt.Errorf("reload %s: %w", sec, unavailable(err))
	}
	if st.Version == "" || st.Loaded.After(seen) {
		// Gone (the next read reloads it whole), or reloaded by another
		// instance since our caller looked.
		return 0, nil
	}
	fence, err := s.store.Fence(ctx, userID)
	if err != nil {
		outcome = ReloadError
		return 0, fmt.Errorf("reload %s: %w", sec, unavailable(err))
	}
	p, err := s.fetchSection(ctx, userID, sec)
	took := time.Since(start)
	if err != nil {
		outcome = ReloadError
		// Keep the lock for the backoff: no instance asks the failing
		// backend again before it ends.
		return s.backoff(sec, s.opts.Now().Sub(st.Loaded)), fmt.Errorf("reload %s: %w", sec, unavailable(err))
	}
	err = s.sections.SaveSection(ctx, userID, sec, p, st.Version, fence, took)
	switch {
	case errors.Is(err, ErrSuperseded):
		outcome = ReloadSuperseded
		return 0, nil
	case errors.Is(err, ErrFenced):
		outcome = ReloadFenced
		return 0, err
	case err != nil:
		outcome = ReloadError
		return 0, fmt.Errorf("save %s: %w", sec, unavailable(err))
	}
	outcome = ReloadOK
	s.opts.Events.Emit(ctx, Event{Type: EventProfileReloaded, Reason: ReasonStale, UserID: userID,
		Section: sec.String(), Duration: took})
	return 0, nil
}

// minBackoff is the first retry delay after a failed section reload.
const minBackoff = time.Second

// backoff is how long every instance waits before asking a failing backend
// for the section again: as long as the section has been overdue, at least
// minBackoff, at most its window. Retries thus come at doubling intervals,
// with no failure counter to store: the overdue time is in the store.
func (s *Service) backoff(sec Section, age time.Duration) time.Duration {
	w := s.opts.Fresh.Window[sec]
	if w <= 0 {
		w = minBackoff
	}
	return min(max(age-w, minBackoff), w)
}

// fetchSection loads one section from the backend into a Profile that holds
// only it (and the user id).
func (s *Service) fetchSection(ctx context.Context, userID uuid.UUID, sec Section) (*Profile, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.BackendTimeout)
	defer cancel()
	p := &Profile{Basic: Basic{ID: userID}}
	var err error
	switch sec {
	case SectionBasic:
		p.Basic, err = s.backend.LoadBasic(ctx, userID)
		if err == nil && p.Basic.ID != userID {
			err = fmt.Errorf("backend returned basic data of user %s for %s", p.Basic.ID, userID)
		}
	case SectionInterests:
		p.Interests, err = s.backend.LoadInterests(ctx, userID)
	case SectionOrders:
		p.Orders, err = s.backend.LoadOrders(ctx, userID)
	case SectionInvoices:
		p.Invoices, err = s.backend.LoadInvoices(ctx, userID)
	case SectionInquiries:
		p.Inquiries, err = s.backend.LoadInquiries(ctx, userID)
	default:
		err = fmt.Errorf("unknown section %d", sec)
	}
	return p, wrap(sec.String(), err)
}

func (s *Service) readWaited(reason string) {
	if s.opts.OnReadWait != nil {
		s.opts.OnReadWait(reason)
	}
}
