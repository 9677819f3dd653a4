package profile

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Section is one part of a profile that the backend loads on its own and
// the store can replace on its own (issue 12): each has its own freshness.
type Section int

// The sections, in the order of Profile's fields.
const (
	SectionBasic Section = iota
	SectionInterests
	SectionOrders
	SectionInvoices
	SectionInquiries
	NumSections
)

var sectionNames = [NumSections]string{"basic", "interests", "orders", "invoices", "inquiries"}

// String is the section's name as configuration, headers and metrics spell
// it: basic, interests, orders, invoices, inquiries.
func (s Section) String() string {
	if s < 0 || s >= NumSections {
		return "section?"
	}
	return sectionNames[s]
}

// ParseSection is the Section named name (String's spelling).
func ParseSection(name string) (Section, bool) {
	for i, n := range sectionNames {
		if n == name {
			return Section(i), true
		}
	}
	return 0, false
}

// Reads reports whether q reads section sec.
func (q Query) Reads(sec Section) bool {
	switch sec {
	case SectionBasic:
		return q.Basic
	case SectionInterests:
		return q.Interests
	case SectionOrders:
		return q.Orders != nil
	case SectionInvoices:
		return q.Invoices != nil
	case SectionInquiries:
		return q.Inquiries != nil
	}
	return false
}

// SectionLoad says when a stored section was loaded from the backend and
// how long that load took (the delta of XFetch's early expiration). The
// zero At means the store does not know (a profile saved before load times
// were recorded).
type SectionLoad struct {
	At   time.Time
	Took time.Duration
}

// Freshness is PROFILE_FRESH and PROFILE_STALE_MAX: how long each section
// may be served before it is reloaded in the background, and the age past
// which a section is reloaded before answering. The zero value is off:
// profiles are reloaded only at login, by a refresh, a webhook or a miss.
type Freshness struct {
	// Window per section; 0 leaves that section alone.
	Window [NumSections]time.Duration
	// StaleMax: a section older than this is reloaded before the read
	// answers (as a miss is), also while the backend fails. 0: no limit.
	StaleMax time.Duration
}

// On reports whether any section has a window.
func (f Freshness) On() bool {
	for _, w := range f.Window {
		if w > 0 {
			return true
		}
	}
	return false
}

// ErrSuperseded: a section reload found the section changed since it began
// (a full save, another section reload, a webhook's or an erasure's
// delete) and wrote nothing. Never shown to a client.
var ErrSuperseded = errors.New("the section changed while it was reloaded")

// SectionState is what a section reload checks before and commits against.
type SectionState struct {
	// Version is the stored section's version: it changes with every save of
	// the section, whole-profile saves included. "" without a profile.
	Version string
	Loaded  time.Time
}

// SectionStore is the part of the store that per-section freshness needs,
// on top of Store. Implementations: redisrepo.ProfileStore.
type SectionStore interface {
	// SectionState reads the section's version and load time from the
	// store itself, not a cache: it must see another instance's reload.
	SectionState(ctx context.Context, userID uuid.UUID, sec Section) (SectionState, error)
	// SaveSection replaces section sec of the user's profile with p's, and
	// nothing else, atomically for readers. It commits only if the user's
	// fence is still fence and the section's version is still base, checked
	// atomically with the switch; otherwise it writes nothing and returns
	// an error wrapping ErrFenced or ErrSuperseded. took is how long the
	// backend load took.
	SaveSection(ctx context.Context, userID uuid.UUID, sec Section, p *Profile, base string, fence Fence, took time.Duration) error
	// LockSection takes the section's reload lock, shared by every
	// instance, for at most ttl. release(ctx, 0) frees it; release(ctx,
	// hold) with hold > 0 keeps it for hold instead, so that no instance
	// retries a failing backend before then (the retry backoff).
	LockSection(ctx context.Context, userID uuid.UUID, sec Section, ttl time.Duration) (release func(context.Context, time.Duration) error, ok bool, err error)
	// WaitSectionUnlocked returns once nobody holds the section's reload
	// lock, or ctx ends.
	WaitSectionUnlocked(ctx context.Context, userID uuid.UUID, sec Section) error
}

// LockWaiter is a Locker that can sleep until the reload lock is released
// instead of being polled. Implementations: redisrepo.ProfileStore (woken
// by Redis's client-side-caching invalidation of the lock key).
type LockWaiter interface {
	// WaitUnlocked returns once nobody holds the user's reload lock, or
	// ctx ends.
	WaitUnlocked(ctx context.Context, userID uuid.UUID) error
}
