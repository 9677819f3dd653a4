package redisrepo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/profile"
)

// Section reloads (issue 12): one section of a profile replaced on its own,
// in the same bounded steps as a whole save (generation.go), without
// touching the other sections' keys.

var _ profile.SectionStore = (*ProfileStore)(nil)

// SectionState returns the generation section sec is read from and when it
// was loaded. It reads Redis, not the client-side cache: a reload must see
// what another instance committed a moment ago.
func (s *ProfileStore) SectionState(ctx context.Context, userID uuid.UUID, sec profile.Section) (profile.SectionState, error) {
	if sec < 0 || sec >= profile.NumSections {
		return profile.SectionState{}, fmt.Errorf("redisrepo: section state: unknown section %d", sec)
	}
	vals, err := s.client.Do(ctx, s.client.B().Hmget().Key(s.keys.meta(userID)).
		Field(metaGen, metaGenOf[sec], metaLoadOf[sec], metaLoaded).Build()).ToArray()
	if err != nil {
		return profile.SectionState{}, fmt.Errorf("redisrepo: section state: %w", unavailable(err))
	}
	str := func(i int) string {
		v, _ := vals[i].ToString() // nil: ""
		return v
	}
	var st profile.SectionState
	if st.Version = str(0); st.Version == "" {
		return st, nil
	}
	if g := str(1); g != "" {
		st.Version = g
	}
	ms, _ := strconv.ParseInt(str(2), 10, 64)
	if ms <= 0 {
		ms, _ = strconv.ParseInt(str(3), 10, 64)
	}
	if ms > 0 {
		st.Loaded = time.UnixMilli(ms)
	}
	return st, nil
}

// SaveSection writes section sec of p as a generation of its own and points
// only that section at it, if the section still points at base and the
// fence is unchanged (sectionSwitchScript); then the section's keys of the
// replaced generation are deleted in batches. Nothing else of the profile
// is written: carol's 10,000 orders stay as they are when her basic data is
// reloaded. Otherwise what it wrote is deleted and the error wraps
// profile.ErrSuperseded or profile.ErrFenced.
func (s *ProfileStore) SaveSection(ctx context.Context, userID uuid.UUID, sec profile.Section, p *profile.Profile, base string, fence profile.Fence, took time.Duration) error {
	cp, err := sectionOnly(userID, sec, p)
	if err != nil {
		return fmt.Errorf("redisrepo: save %s: %w", sec, err)
	}
	gen := newGen()
	interests := uniq(cp.Interests)
	writes := appendSectionWrites(nil, s.keys.gen(userID, gen), sec, cp, interests)
	if err := s.writeGen(ctx, userID, fence, writes); err != nil {
		return fmt.Errorf("redisrepo: save %s: %w", sec, err)
	}
	args := []string{string(fence), sec.String(), base,
		metaGenOf[sec], gen,
		metaLoadOf[sec], strconv.FormatInt(s.now().UnixMilli(), 10),
		metaTookOf[sec], strconv.FormatInt(max(took.Milliseconds(), 1), 10)}
	if f := metaCountOf[sec]; f != "" {
		args = append(args, f, strconv.Itoa(sectionLen(sec, cp, interests)))
	}
	old, err := sectionSwitchScript.Exec(ctx, s.client, []string{s.keys.meta(userID), s.keys.fence(userID)}, args).ToString()
	switch err = fencedErr(err); {
	case rueidis.IsRedisNil(err):
		s.discard(ctx, userID, writes)
		return fmt.Errorf("redisrepo: save %s: %w", sec, profile.ErrSuperseded)
	case isFenced(err):
		s.discard(ctx, userID, writes)
		return fmt.Errorf("redisrepo: save %s: %w", sec, err)
	case err != nil:
		return fmt.Errorf("redisrepo: save %s: %w", sec, err)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := dropGen(cctx, s.client, s.keys, userID, old, partOf(sec)); err != nil {
		s.log.WarnContext(ctx, "redisrepo: delete replaced section; its keys expire by their TTL",
			"user", userID, "section", sec.String(), "gen", old, "err", err)
	}
	return nil
}

// sectionOnly is a profile of userID holding p's section sec only, checked
// as Save checks a whole profile.
func sectionOnly(userID uuid.UUID, sec profile.Section, p *profile.Profile) (*profile.Profile, error) {
	if p == nil {
		return nil, errors.New("nil profile")
	}
	cp := &profile.Profile{Basic: profile.Basic{ID: userID}}
	switch sec {
	case profile.SectionBasic:
		if p.Basic.ID != userID {
			return nil, fmt.Errorf("basic data of user %s for %s", p.Basic.ID, userID)
		}
		cp.Basic = p.Basic
	case profile.SectionInterests:
		cp.Interests = p.Interests
	case profile.SectionOrders:
		cp.Orders = p.Orders
	case profile.SectionInvoices:
		cp.Invoices = p.Invoices
	case profile.SectionInquiries:
		cp.Inquiries = p.Inquiries
	default:
		return nil, fmt.Errorf("unknown section %d", sec)
	}
	return cp, checkProfile(cp)
}

// sectionLen is the count meta keeps for section sec.
func sectionLen(sec profile.Section, p *profile.Profile, interests []string) int {
	switch sec {
	case profile.SectionInterests:
		return len(interests)
	case profile.SectionOrders:
		return len(p.Orders)
	case profile.SectionInvoices:
		return len(p.Invoices)
	case profile.SectionInquiries:
		return len(p.Inquiries)
	}
	return 0
}

// LockSection takes section sec's reload lock: SET NX PX with a random
// owner token, like TryLock. release(ctx, 0) deletes it while it is still
// ours; release(ctx, hold) keeps it for hold instead (holdScript), the
// backoff after a failed reload that every instance respects.
func (s *ProfileStore) LockSection(ctx context.Context, userID uuid.UUID, sec profile.Section, ttl time.Duration) (func(context.Context, time.Duration) error, bool, error) {
	if err := checkTTL(ttl); err != nil {
		return nil, false, fmt.Errorf("redisrepo: lock %s: %w", sec, err)
	}
	key := s.keys.sectionLock(userID, sec)
	owner := rand.Text()
	err := s.client.Do(ctx, s.client.B().Set().Key(key).Value(owner).Nx().PxMilliseconds(ttl.Milliseconds()).Build()).Error()
	if rueidis.IsRedisNil(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("redisrepo: lock %s: %w", sec, err)
	}
	release := func(ctx context.Context, hold time.Duration) error {
		var err error
		if hold > 0 {
			err = holdScript.Exec(ctx, s.client, []string{key}, []string{owner, strconv.FormatInt(max(hold.Milliseconds(), 1), 10)}).Error()
		} else {
			err = unlockScript.Exec(ctx, s.client, []string{key}, []string{owner}).Error()
		}
		if err != nil {
			return fmt.Errorf("redisrepo: unlock %s: %w", sec, err)
		}
		return nil
	}
	return release, true, nil
}

// WaitSectionUnlocked returns once nobody holds section sec's reload lock
// (wake.go).
func (s *ProfileStore) WaitSectionUnlocked(ctx context.Context, userID uuid.UUID, sec profile.Section) error {
	return s.waitKey(ctx, s.keys.sectionLock(userID, sec))
}
