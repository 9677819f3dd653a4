package profile

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"
)

// DemoAccount is one account of the mock CRM.
type DemoAccount struct {
	Email, Password                              string
	Orders, Invoices, Inquiries, Interests, Seed int
	First, Last, City, PostalCode, Country       string
	passwordHash                                 string
}

// DemoAccounts are the contract's demo users. Passwords are listed because
// they are printed at start for people trying the service; the backend only
// keeps their bcrypt hashes.
var DemoAccounts = []DemoAccount{
	{Email: "alice@example.com", Password: "alice-secret", Orders: 25, Invoices: 6, Inquiries: 3, Interests: 4, Seed: 1,
		First: "Alice Zoë", Last: "Ångström", City: "Malmö", PostalCode: "211 22", Country: "SE",
		passwordHash: "$2a$10$6oV5uuTsEH9KgVtQRFWCge/l.y4fTzI2umJQoJu5U15XCAxHu.KA."},
	{Email: "bob@example.com", Password: "bob-secret", Seed: 2,
		First: "Bob", Last: "Müller", City: "München", PostalCode: "80331", Country: "DE",
		passwordHash: "$2a$10$Y7SezTlomMfDnZNV.2D4G.Tv0mHdMdgAoK0wAhXdJcXzHCy5JGFty"},
	{Email: "carol@example.com", Password: "carol-secret", Orders: 10000, Invoices: 120, Inquiries: 40, Interests: 12, Seed: 3,
		First: "Carol", Last: "Nguyễn", City: "Zürich", PostalCode: "8001", Country: "CH",
		passwordHash: "$2a$10$gVBiagYpnBzpyAogdX/gz.sTddhhfQsck6PrhTZP5ynb9YtKqgcOO"},
}

// dummyHash is compared against for unknown emails, so that an unknown email
// costs the same bcrypt work as a wrong password.
const dummyHash = "$2a$10$TYESRDi39.7iyI6zOUFFQ.SNj9T7MKHAdq4Z2WBtqfTOU9wM0B9aq"

// userNamespace derives stable user ids from emails: the same id on every
// run and every instance.
var userNamespace = uuid.MustParse("6f1c8e52-4c1d-4e4a-9b7e-2f0c1d9a7b10")

// DemoUserID is the id the mock CRM gives the account with this email.
func DemoUserID(email string) uuid.UUID {
	return uuid.NewSHA1(userNamespace, []byte(strings.ToLower(email)))
}

// MockBackend is a deterministic in-process CRM with the demo accounts. It is
// a product feature (zero-setup demo), not a test double.
type MockBackend struct {
	// Latency delays every call, as real CRMs answer slowly.
	Latency  time.Duration
	byEmail  map[string]*DemoAccount
	byID     map[uuid.UUID]*DemoAccount
	sections atomic.Int64
}

var _ Backend = (*MockBackend)(nil)

// NewMockBackend returns the demo CRM.
func NewMockBackend(latency time.Duration) *MockBackend {
	b := &MockBackend{Latency: latency, byEmail: map[string]*DemoAccount{}, byID: map[uuid.UUID]*DemoAccount{}}
	for i := range DemoAccounts {
		a := &DemoAccounts[i]
		b.byEmail[a.Email] = a
		b.byID[DemoUserID(a.Email)] = a
	}
	return b
}

// SectionLoads counts the section loads served, for tests.
func (b *MockBackend) SectionLoads() int64 { return b.sections.Load() }

func (b *MockBackend) wait(ctx context.Context) error {
	if b.Latency <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(b.Latency)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("mock backend: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}

// Authenticate implements Backend.
func (b *MockBackend) Authenticate(ctx context.Context, email, password string) (uuid.UUID, error) {
	if err := b.wait(ctx); err != nil {
		return uuid.Nil, err
	}
	a, ok := b.byEmail[strings.ToLower(strings.TrimSpace(email))]
	hash := dummyHash
	if ok {
		hash = a.passwordHash
	}
	// Compare even for unknown emails: same work, same answer.
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)); err != nil || !ok {
		return uuid.Nil, ErrInvalidCredentials
	}
	return DemoUserID(a.Email), nil
}

func (b *MockBackend) account(ctx context.Context, id uuid.UUID) (*DemoAccount, error) {
	if err := b.wait(ctx); err != nil {
		return nil, err
	}
	a, ok := b.byID[id]
	if !ok {
		return nil, fmt.Errorf("mock backend: user %s: %w", id, ErrNotFound)
	}
	b.sections.Add(1)
	return a, nil
}

// demoEpoch anchors every generated date, so data never depends on the clock.
var demoEpoch = time.Date(2026, 10, 1, 9, 30, 0, 0, time.UTC)

// LoadBasic implements Backend.
func (b *MockBackend) LoadBasic(ctx context.Context, id uuid.UUID) (Basic, error) {
	a, err := b.account(ctx, id)
	if err != nil {
		return Basic{}, err
	}
	return Basic{
		ID: id, FirstName: a.First, LastName: a.Last, Email: a.Email,
		Phone:       fmt.Sprintf("+46 70 %03d %02d %02d", 100+a.Seed, 10+a.Seed, 20+a.Seed),
		AddressLine: fmt.Sprintf("Storgatan %d, lgh %d", 10+a.Seed, 1100+a.Seed),
		PostalCode:  a.PostalCode, City: a.City, Country: a.Country,
		MarketingPermission: a.Seed%2 == 1,
		Created:             demoEpoch.AddDate(-3, a.Seed, 0),
	}, nil
}

var interestTags = []string{"running", "jazz", "cooking", "photography", "hiking", "chess",
	"gardening", "cycling", "sci-fi", "yoga", "board games", "crème brûlée", "skiing", "pottery"}

// LoadInterests implements Backend.
func (b *MockBackend) LoadInterests(ctx context.Context, id uuid.UUID) ([]string, error) {
	a, err := b.account(ctx, id)
	if err != nil {
		return nil, err
	}
	r := rng(a.Seed, 1)
	perm := r.Perm(len(interestTags))
	out := make([]string, a.Interests)
	for i := range out {
		out[i] = interestTags[perm[i]]
	}
	return out, nil
}

var (
	orderStatuses = []string{"placed", "paid", "shipped", "delivered", "delivered", "delivered", "returned", "cancelled"}
	cities        = []string{"Malmö", "Göteborg", "København", "Zürich", "München", "Kraków", "Reykjavík", "São Paulo", "Ōsaka", "Lyon"}
	currencies    = []string{"EUR", "SEK", "CHF"}
)

// LoadOrders implements Backend: newest first.
func (b *MockBackend) LoadOrders(ctx context.Context, id uuid.UUID) ([]Order, error) {
	a, err := b.account(ctx, id)
	if err != nil {
		return nil, err
	}
	r := rng(a.Seed, 2)
	out := make([]Order, a.Orders)
	for i := range out {
		n := a.Orders - i // display order: newest (highest number) first
		out[i] = Order{
			ID:           fmt.Sprintf("%d%06d", a.Seed, n),
			Number:       fmt.Sprintf("ORD-%d-%06d", a.Seed, n),
			Date:         demoEpoch.Add(-time.Duration(i) * 7 * time.Hour),
			Status:       orderStatuses[r.IntN(len(orderStatuses))],
			Total:        Money(500 + r.IntN(50000)),
			Currency:     currencies[r.IntN(len(currencies))],
			ItemCount:    1 + r.IntN(8),
			ShippingCity: cities[r.IntN(len(cities))],
		}
	}
	return out, nil
}

// LoadInvoices implements Backend: newest first.
func (b *MockBackend) LoadInvoices(ctx context.Context, id uuid.UUID) ([]Invoice, error) {
	a, err := b.account(ctx, id)
	if err != nil {
		return nil, err
	}
	r := rng(a.Seed, 3)
	out := make([]Invoice, a.Invoices)
	for i := range out {
		n := a.Invoices - i
		out[i] = Invoice{
			ID:       fmt.Sprintf("%d%05d", a.Seed, n),
			Number:   fmt.Sprintf("INV-%d-%05d", a.Seed, n),
			Date:     demoEpoch.AddDate(0, 0, -14*i),
			Amount:   Money(1000 + r.IntN(90000)),
			Currency: currencies[r.IntN(len(currencies))],
			Paid:     i > 0 || r.IntN(2) == 0, // only the newest may be open
		}
	}
	return out, nil
}

var inquiryTexts = []string{
	"Die Lieferung kam beschädigt an – bitte um Ersatz.",
	"Can I change the delivery address of my order?",
	"Faktura saknas för min senaste beställning.",
	"Le colis est arrivé en retard, mais tout est là. Merci !",
	"Refund for a returned item has not arrived yet.",
	"Wie ändere ich mein Passwort? 🔑",
}

// LoadInquiries implements Backend: newest first.
func (b *MockBackend) LoadInquiries(ctx context.Context, id uuid.UUID) ([]Inquiry, error) {
	a, err := b.account(ctx, id)
	if err != nil {
		return nil, err
	}
	r := rng(a.Seed, 4)
	out := make([]Inquiry, a.Inquiries)
	for i := range out {
		out[i] = Inquiry{
			ID:             fmt.Sprintf("%d%04d", a.Seed, a.Inquiries-i),
			Closed:         i > 0,
			Description:    inquiryTexts[r.IntN(len(inquiryTexts))],
			Submitted:      demoEpoch.AddDate(0, 0, -30*i).Add(-3 * time.Hour),
			SubmitterEmail: a.Email,
			SubmitterName:  a.First + " " + a.Last,
		}
	}
	return out, nil
}

// rng is a per-account, per-section generator: the same data on every run.
func rng(seed, section int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), uint64(section)))
}
