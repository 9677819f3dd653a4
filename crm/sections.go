package crm

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/profile"
)

// maxIDLen bounds an item id: ids become part of Redis key names.
const maxIDLen = 200

// The wire shapes. Required fields are pointers, so that a missing one is
// told apart from a zero value; see the package doc.

type basicJSON struct {
	ID                  *string    `json:"id"`
	FirstName           string     `json:"first_name"`
	LastName            string     `json:"last_name"`
	Email               *string    `json:"email"`
	Phone               string     `json:"phone"`
	AddressLine         string     `json:"address_line"`
	PostalCode          string     `json:"postal_code"`
	City                string     `json:"city"`
	Country             string     `json:"country"`
	MarketingPermission bool       `json:"marketing_permission"`
	Created             *time.Time `json:"created"`
}

type orderJSON struct {
	ID           *string    `json:"id"`
	Number       *string    `json:"number"`
	Date         *time.Time `json:"date"`
	Status       *string    `json:"status"`
	Total        *int64     `json:"total"`
	Currency     *string    `json:"currency"`
	ItemCount    int        `json:"item_count"`
	ShippingCity string     `json:"shipping_city"`
}

type invoiceJSON struct {
	ID       *string    `json:"id"`
	Number   *string    `json:"number"`
	Date     *time.Time `json:"date"`
	Amount   *int64     `json:"amount"`
	Currency *string    `json:"currency"`
	Paid     *bool      `json:"paid"`
}

type inquiryJSON struct {
	ID             *string    `json:"id"`
	Closed         *bool      `json:"closed"`
	Description    string     `json:"description"`
	Submitted      *time.Time `json:"submitted"`
	SubmitterEmail string     `json:"submitter_email"`
	SubmitterName  string     `json:"submitter_name"`
}

// required is a set of required fields; check names the missing ones.
type required []requiredField

type requiredField struct {
	name    string
	missing bool
}

func field[T any](name string, p *T) requiredField { return requiredField{name, p == nil} }

func (r required) check() error {
	var names []string
	for _, f := range r {
		if f.missing {
			names = append(names, `"`+f.name+`"`)
		}
	}
	if len(names) > 0 {
		return fmt.Errorf("missing required field %s", strings.Join(names, ", "))
	}
	return nil
}

// LoadBasic implements profile.Backend.
func (c *Client) LoadBasic(ctx context.Context, userID uuid.UUID) (profile.Basic, error) {
	body, err := c.get(ctx, userID, EndpointBasic)
	if err != nil {
		return profile.Basic{}, err
	}
	b, err := parseBasic(body, userID)
	if err != nil {
		return profile.Basic{}, fmt.Errorf("crm: GET %s: %w", c.path(userID, EndpointBasic), err)
	}
	return b, nil
}

func parseBasic(body []byte, userID uuid.UUID) (profile.Basic, error) {
	var j basicJSON
	if err := decode(body, &j); err != nil {
		return profile.Basic{}, err
	}
	if err := (required{field("id", j.ID), field("email", j.Email), field("created", j.Created)}).check(); err != nil {
		return profile.Basic{}, fmt.Errorf("%w: %w", profile.ErrBadBackendResponse, err)
	}
	id, err := parseUserID(*j.ID)
	if err != nil {
		return profile.Basic{}, fmt.Errorf("%w: id: %w", profile.ErrBadBackendResponse, err)
	}
	if id != userID {
		return profile.Basic{}, fmt.Errorf("%w: basic data of user %s, asked for %s", profile.ErrBadBackendResponse, id, userID)
	}
	return profile.Basic{
		ID:                  id,
		FirstName:           j.FirstName,
		LastName:            j.LastName,
		Email:               *j.Email,
		Phone:               j.Phone,
		AddressLine:         j.AddressLine,
		PostalCode:          j.PostalCode,
		City:                j.City,
		Country:             j.Country,
		MarketingPermission: j.MarketingPermission,
		Created:             *j.Created,
	}, nil
}

// LoadInterests implements profile.Backend.
func (c *Client) LoadInterests(ctx context.Context, userID uuid.UUID) ([]string, error) {
	body, err := c.get(ctx, userID, EndpointInterests)
	if err != nil {
		return nil, err
	}
	var tags []string
	if err := decode(body, &tags); err != nil {
		return nil, fmt.Errorf("crm: GET %s: %w", c.path(userID, EndpointInterests), err)
	}
	return tags, nil
}

// LoadOrders implements profile.Backend.
func (c *Client) LoadOrders(ctx context.Context, userID uuid.UUID) ([]profile.Order, error) {
	return loadList(c, ctx, userID, EndpointOrders, func(j orderJSON) (string, profile.Order, error) {
		if err := (required{field("id", j.ID), field("number", j.Number), field("date", j.Date),
			field("status", j.Status), field("total", j.Total), field("currency", j.Currency)}).check(); err != nil {
			return "", profile.Order{}, err
		}
		if j.ItemCount < 0 {
			return "", profile.Order{}, fmt.Errorf("negative item_count %d", j.ItemCount)
		}
		return *j.ID, profile.Order{
			ID: *j.ID, Number: *j.Number, Date: *j.Date, Status: *j.Status, Total: profile.Money(*j.Total),
			Currency: *j.Currency, ItemCount: j.ItemCount, ShippingCity: j.ShippingCity,
		}, nil
	})
}

// LoadInvoices implements profile.Backend.
func (c *Client) LoadInvoices(ctx context.Context, userID uuid.UUID) ([]profile.Invoice, error) {
	return loadList(c, ctx, userID, EndpointInvoices, func(j invoiceJSON) (string, profile.Invoice, error) {
		if err := (required{field("id", j.ID), field("number", j.Number), field("date", j.Date),
			field("amount", j.Amount), field("currency", j.Currency), field("paid", j.Paid)}).check(); err != nil {
			return "", profile.Invoice{}, err
		}
		return *j.ID, profile.Invoice{
			ID: *j.ID, Number: *j.Number, Date: *j.Date, Amount: profile.Money(*j.Amount),
			Currency: *j.Currency, Paid: *j.Paid,
		}, nil
	})
}

// LoadInquiries implements profile.Backend.
func (c *Client) LoadInquiries(ctx context.Context, userID uuid.UUID) ([]profile.Inquiry, error) {
	return loadList(c, ctx, userID, EndpointInquiries, func(j inquiryJSON) (string, profile.Inquiry, error) {
		if err := (required{field("id", j.ID), field("closed", j.Closed), field("submitted", j.Submitted)}).check(); err != nil {
			return "", profile.Inquiry{}, err
		}
		return *j.ID, profile.Inquiry{
			ID: *j.ID, Closed: *j.Closed, Description: j.Description, Submitted: *j.Submitted,
			SubmitterEmail: j.SubmitterEmail, SubmitterName: j.SubmitterName,
		}, nil
	})
}

// loadList fetches a list section and converts each item, checking ids.
func loadList[J, T any](c *Client, ctx context.Context, userID uuid.UUID, endpoint string,
	convert func(J) (string, T, error)) ([]T, error) {
	body, err := c.get(ctx, userID, endpoint)
	if err != nil {
		return nil, err
	}
	items, err := parseList(body, convert)
	if err != nil {
		return nil, fmt.Errorf("crm: GET %s: %w", c.path(userID, endpoint), err)
	}
	return items, nil
}

func parseList[J, T any](body []byte, convert func(J) (string, T, error)) ([]T, error) {
	var js []J
	if err := decode(body, &js); err != nil {
		return nil, err
	}
	out := make([]T, 0, len(js))
	seen := make(map[string]int, len(js))
	for i, j := range js {
		id, it, err := convert(j)
		if err == nil {
			err = checkID(id)
		}
		if err == nil {
			if first, dup := seen[id]; dup {
				err = fmt.Errorf("id %q repeats item %d", id, first)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: item %d: %w", profile.ErrBadBackendResponse, i, err)
		}
		seen[id] = i
		out = append(out, it)
	}
	return out, nil
}

func checkID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("empty id")
	case len(id) > maxIDLen:
		return fmt.Errorf("id of %d bytes, at most %d", len(id), maxIDLen)
	case !utf8.ValidString(id):
		return fmt.Errorf("id is not UTF-8")
	}
	return nil
}
