package web

import (
	"time"

	"github.com/profilecache/profilecache/auth"
	"github.com/profilecache/profilecache/profile"
)

// JSON shapes of the API. They are kept apart from the domain types so that
// renaming a field in profile never silently changes the API. The basic data
// and the order page have hand-written encoders (jsonenc.go); their shapes,
// basicJSON and orderJSON, are in jsonenc_test.go, which holds the encoders
// to them.

type errorJSON struct {
	Error string `json:"error"`
}

type loginRequestJSON struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type loginResponseJSON struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"`
}

type invoiceJSON struct {
	ID       string `json:"id"`
	Number   string `json:"number"`
	Date     string `json:"date"`
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
	Paid     bool   `json:"paid"`
}

type inquiryJSON struct {
	ID             string `json:"id"`
	Closed         bool   `json:"closed"`
	Description    string `json:"description"`
	Submitted      string `json:"submitted"`
	SubmitterEmail string `json:"submitter_email"`
	SubmitterName  string `json:"submitter_name"`
}

type pageJSON[T any] struct {
	Items  []T `json:"items"`
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
	Total  int `json:"total"`
}

type sessionJSON struct {
	ID        string `json:"id"`
	Created   string `json:"created"`
	LastSeen  string `json:"last_seen"`
	UserAgent string `json:"user_agent"`
	Current   bool   `json:"current"`
}

type revokedJSON struct {
	Revoked int `json:"revoked"`
}

type statusJSON struct {
	Status string `json:"status"`
}

func rfc3339(t time.Time) string { return t.Format(time.RFC3339) }

func toLoginResponseJSON(t auth.Issued) loginResponseJSON {
	return loginResponseJSON{Token: t.Token, ExpiresAt: rfc3339(t.ExpiresAt.UTC())}
}

func toInvoiceJSON(i profile.Invoice) invoiceJSON {
	return invoiceJSON{
		ID:       i.ID,
		Number:   i.Number,
		Date:     rfc3339(i.Date),
		Amount:   formatAmount(i.Amount),
		Currency: i.Currency,
		Paid:     i.Paid,
	}
}

func toInquiryJSON(q profile.Inquiry) inquiryJSON {
	return inquiryJSON{
		ID:             q.ID,
		Closed:         q.Closed,
		Description:    q.Description,
		Submitted:      rfc3339(q.Submitted),
		SubmitterEmail: q.SubmitterEmail,
		SubmitterName:  q.SubmitterName,
	}
}

func toSessionJSON(s profile.Session, current bool) sessionJSON {
	return sessionJSON{
		ID:        s.ID,
		Created:   rfc3339(s.Created),
		LastSeen:  rfc3339(s.LastSeen),
		UserAgent: s.UserAgent,
		Current:   current,
	}
}

// toPageJSON converts one page of a list section. Items is never nil, so an
// empty page is "items": [], not null.
func toPageJSON[T, J any](s profile.Slice[T], p profile.Page, convert func(T) J) pageJSON[J] {
	items := make([]J, 0, len(s.Items))
	for _, it := range s.Items {
		items = append(items, convert(it))
	}
	return pageJSON[J]{Items: items, Offset: p.Offset, Limit: p.Limit, Total: s.Total}
}
