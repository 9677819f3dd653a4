// Package profile is the domain root of profilecache: the user-profile types,
// the backend (CRM) they come from, the store they are cached in, and the
// Service that puts the two together. It imports neither Redis nor HTTP;
// adapters (redisrepo, web, auth) depend on it, never the other way round.
package profile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Sentinel errors. Adapters wrap them with context; web maps them to statuses
// in one place.
var (
	// ErrNotFound: the requested data is not in the store (never loaded,
	// expired, evicted or deleted). The Service reacts by reloading.
	ErrNotFound = errors.New("not found")
	// ErrInvalidCredentials is the one answer for an unknown email and a
	// wrong password alike, so that logins cannot probe for accounts.
	ErrInvalidCredentials = errors.New("invalid email or password")
	// ErrUnavailable: a dependency (backend, store, reload lock) did not
	// answer in time. Maps to 503.
	ErrUnavailable = errors.New("temporarily unavailable")
	// ErrInvalidPage: offset or limit out of range. Maps to 400.
	ErrInvalidPage = errors.New("invalid page")
	// ErrTooSoon: a refresh was asked for while the profile is younger than
	// the refresh cooldown. The error is a *TooSoonError, which says when to
	// try again. Maps to 429.
	ErrTooSoon = errors.New("the profile was loaded moments ago")
	// ErrFenced: every session of the user was ended (logout-all, changed
	// credentials, erasure) while a login or reload was in flight, so it
	// wrote nothing. Maps to 401: the user has to sign in again.
	ErrFenced = errors.New("the user's sessions were ended meanwhile")
)

// TooSoonError refuses a refresh of a profile younger than the cooldown.
// errors.Is(err, ErrTooSoon) holds for it.
type TooSoonError struct {
	// Wait is how long until the profile is old enough to refresh.
	Wait time.Duration
}

func (e *TooSoonError) Error() string {
	return fmt.Sprintf("%v: refresh again in %v", ErrTooSoon, e.Wait)
}

// Is makes errors.Is(err, ErrTooSoon) true.
func (e *TooSoonError) Is(target error) bool { return target == ErrTooSoon }

// RetryAfter is when the client may refresh again (web sends it as the
// Retry-After header).
func (e *TooSoonError) RetryAfter() time.Duration { return e.Wait }

// Fence is a user's revocation fence: an opaque value that changes whenever
// every session of the user is ended. Work that began under one fence (a
// login, a profile reload) commits only while the fence is unchanged, checked
// atomically with the write, so that a revocation or an erasure is never
// undone by something already in flight. "" means no recent revocation.
type Fence string

// Basic is the profile's basic data, stored as one hash.
type Basic struct {
	ID                  uuid.UUID
	FirstName           string
	LastName            string
	Email               string
	Phone               string
	AddressLine         string
	PostalCode          string
	City                string
	Country             string // ISO 3166-1 alpha-2
	MarketingPermission bool
	Created             time.Time
}

// Name is the display name.
func (b Basic) Name() string {
	switch {
	case b.FirstName == "":
		return b.LastName
	case b.LastName == "":
		return b.FirstName
	}
	return b.FirstName + " " + b.LastName
}

// Money is an amount in minor units (cents) so that totals add up exactly.
type Money int64

// Order is one order, stored as one hash; the user's order ids form a list in
// display order (newest first).
type Order struct {
	ID           string
	Number       string
	Date         time.Time
	Status       string
	Total        Money
	Currency     string
	ItemCount    int
	ShippingCity string
}

// Invoice is one invoice, stored as one hash.
type Invoice struct {
	ID       string
	Number   string
	Date     time.Time
	Amount   Money
	Currency string
	Paid     bool
}

// Inquiry is one support inquiry, stored as one hash.
type Inquiry struct {
	ID             string
	Closed         bool
	Description    string
	Submitted      time.Time
	SubmitterEmail string
	SubmitterName  string
}

// Profile is everything the backend knows about one user. It is what a
// (re)load writes; requests never read it whole.
type Profile struct {
	Basic     Basic
	Interests []string
	Orders    []Order
	Invoices  []Invoice
	Inquiries []Inquiry
}

// Page selects a window of a list section.
type Page struct {
	Offset int
	Limit  int
}

// Paging limits shared by the API and the pages.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Validate reports ErrInvalidPage for a negative offset or a limit outside
// 1..MaxLimit. It never clamps: a client asking for 1000 items should learn
// that it gets at most 100.
func (p Page) Validate() error {
	if p.Offset < 0 || p.Limit < 1 || p.Limit > MaxLimit {
		return ErrInvalidPage
	}
	return nil
}

// Slice is one page of a list section and the section's total length.
type Slice[T any] struct {
	Items []T
	Total int
}

// Query names the parts of a profile one request shows, so that a handler
// reads only those. Nil pages are not read.
type Query struct {
	Basic     bool
	Interests bool
	Orders    *Page
	Invoices  *Page
	Inquiries *Page
	// Loads asks the store to fill View.Loads; the Service sets it when
	// freshness is on.
	Loads bool
}

// View is what a Query returns. Every section in it is whole, from one
// load: a reader never sees half of a reload.
type View struct {
	Basic     Basic
	Interests []string
	Orders    Slice[Order]
	Invoices  Slice[Invoice]
	Inquiries Slice[Inquiry]
	// Loads says, per section read, when the store loaded it from the
	// backend (sections not read, or Query.Loads unset: zero). Each section comes whole from one
	// load; different sections may come from different loads.
	Loads [NumSections]SectionLoad
	// Stale names the sections served past their freshness window
	// (Freshness): the backend could not be asked in time, or the reload is
	// still under way. Empty when freshness is off.
	Stale []Section
}

// Backend is the system of record (a CRM). Each section loads on its own so
// that the Service can fetch them concurrently.
type Backend interface {
	// Authenticate returns the user's id, or ErrInvalidCredentials for an
	// unknown email and a wrong password alike.
	Authenticate(ctx context.Context, email, password string) (uuid.UUID, error)
	LoadBasic(ctx context.Context, userID uuid.UUID) (Basic, error)
	LoadInterests(ctx context.Context, userID uuid.UUID) ([]string, error)
	LoadOrders(ctx context.Context, userID uuid.UUID) ([]Order, error)
	LoadInvoices(ctx context.Context, userID uuid.UUID) ([]Invoice, error)
	LoadInquiries(ctx context.Context, userID uuid.UUID) ([]Inquiry, error)
}

// Store caches profiles. Implementations: redisrepo.ProfileStore.
type Store interface {
	// Save replaces the user's whole profile in one atomic step and (re)sets
	// its expiry: a concurrent Read sees the old or the new profile, never a
	// mix of both. fence is the user's Fence as read before the profile was
	// fetched: if every session of the user has been ended since, Save writes
	// nothing and returns an error wrapping ErrFenced.
	Save(ctx context.Context, p *Profile, fence Fence) error
	// Fence returns the user's current revocation fence (no cache).
	Fence(ctx context.Context, userID uuid.UUID) (Fence, error)
	// Read returns the parts q asks for, all from one stored version. It
	// returns an error wrapping ErrNotFound when the profile, or any key of
	// it that q needs, is missing.
	Read(ctx context.Context, userID uuid.UUID, q Query) (View, error)
	// Delete removes the user's profile (not their sessions).
	Delete(ctx context.Context, userID uuid.UUID) error
	// Version identifies the stored profile: it changes with every Save and
	// is "" when there is none. It reflects the latest Save (no cache).
	Version(ctx context.Context, userID uuid.UUID) (string, error)
	// Loaded is when the stored profile was saved, that is loaded from the
	// backend; the zero time when there is none, or it does not say (a
	// profile saved before this was recorded counts as old). It reflects the
	// latest Save (no cache), whichever instance made it.
	Loaded(ctx context.Context, userID uuid.UUID) (time.Time, error)
}

// Locker is a lock shared by every instance that uses the same store, so that
// a reload hits the backend once across instances.
type Locker interface {
	// TryLock takes the user's reload lock for at most ttl. ok=false, err=nil
	// means another owner holds it. release frees it only if it is still ours.
	TryLock(ctx context.Context, userID uuid.UUID, ttl time.Duration) (release func(context.Context) error, ok bool, err error)
	// Locked reports whether anyone holds the user's reload lock.
	Locked(ctx context.Context, userID uuid.UUID) (bool, error)
}
