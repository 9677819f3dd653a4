package redisrepo

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/profile"
)

// Hash field names. They are what people see in redis-cli: keep them short
// and plain, and keep the hashes small enough for listpack encoding.
const (
	fID = "id"

	fFirstName   = "first_name"
	fLastName    = "last_name"
	fEmail       = "email"
	fPhone       = "phone"
	fAddressLine = "address_line"
	fPostalCode  = "postal_code"
	fCity        = "city"
	fCountry     = "country"
	fMarketing   = "marketing"
	fCreated     = "created"

	fNumber   = "number"
	fDate     = "date"
	fStatus   = "status"
	fTotal    = "total"
	fCurrency = "currency"
	fItems    = "items"

	fAmount = "amount"
	fPaid   = "paid"

	fClosed      = "closed"
	fDescription = "description"
	fSubmitted   = "submitted"
	fName        = "name"
)

// errCorrupt marks a stored hash that does not parse. Read treats it as
// missing: the Service reloads and the next save replaces it.
var errCorrupt = errors.New("corrupt hash")

func encodeBasic(b profile.Basic) []string {
	return []string{
		fID, b.ID.String(),
		fFirstName, b.FirstName,
		fLastName, b.LastName,
		fEmail, b.Email,
		fPhone, b.Phone,
		fAddressLine, b.AddressLine,
		fPostalCode, b.PostalCode,
		fCity, b.City,
		fCountry, b.Country,
		fMarketing, encodeBool(b.MarketingPermission),
		fCreated, encodeTime(b.Created),
	}
}

func decodeBasic(m map[string]string) (profile.Basic, error) { return basicFrom(&decoder{m: m}) }

func basicFrom(d *decoder) (profile.Basic, error) {
	b := profile.Basic{
		ID:                  d.uuid(fID),
		FirstName:           d.str(fFirstName),
		LastName:            d.str(fLastName),
		Email:               d.str(fEmail),
		Phone:               d.str(fPhone),
		AddressLine:         d.str(fAddressLine),
		PostalCode:          d.str(fPostalCode),
		City:                d.str(fCity),
		Country:             d.str(fCountry),
		MarketingPermission: d.bool(fMarketing),
		Created:             d.time(fCreated),
	}
	return b, d.err
}

// The fields of each hash, in the order the decoders read them: what the
// read path asks HMGET for. Item hashes hold no id: it is in the key name
// and in the section's list already, and a third copy cost 9 % of a large
// profile's memory (see docs/performance.md).
var (
	basicFields   = []string{fID, fFirstName, fLastName, fEmail, fPhone, fAddressLine, fPostalCode, fCity, fCountry, fMarketing, fCreated}
	orderFields   = []string{fNumber, fDate, fStatus, fTotal, fCurrency, fItems, fCity}
	invoiceFields = []string{fNumber, fDate, fAmount, fCurrency, fPaid}
	inquiryFields = []string{fClosed, fDescription, fSubmitted, fEmail, fName}
)

func encodeOrder(o profile.Order) []string {
	return []string{
		fNumber, o.Number,
		fDate, encodeTime(o.Date),
		fStatus, o.Status,
		fTotal, strconv.FormatInt(int64(o.Total), 10),
		fCurrency, o.Currency,
		fItems, strconv.Itoa(o.ItemCount),
		fCity, o.ShippingCity,
	}
}

// decodeOrder decodes an order hash; the ID stays empty (not stored).
func decodeOrder(m map[string]string) (profile.Order, error) { return orderFrom("", &decoder{m: m}) }

func orderFrom(id string, d *decoder) (profile.Order, error) {
	o := profile.Order{
		ID:           id,
		Number:       d.str(fNumber),
		Date:         d.time(fDate),
		Status:       d.str(fStatus),
		Total:        profile.Money(d.int(fTotal)),
		Currency:     d.str(fCurrency),
		ItemCount:    int(d.int(fItems)),
		ShippingCity: d.str(fCity),
	}
	return o, d.err
}

func encodeInvoice(i profile.Invoice) []string {
	return []string{
		fNumber, i.Number,
		fDate, encodeTime(i.Date),
		fAmount, strconv.FormatInt(int64(i.Amount), 10),
		fCurrency, i.Currency,
		fPaid, encodeBool(i.Paid),
	}
}

// decodeInvoice decodes an invoice hash; the ID stays empty (not stored).
func decodeInvoice(m map[string]string) (profile.Invoice, error) {
	return invoiceFrom("", &decoder{m: m})
}

func invoiceFrom(id string, d *decoder) (profile.Invoice, error) {
	i := profile.Invoice{
		ID:       id,
		Number:   d.str(fNumber),
		Date:     d.time(fDate),
		Amount:   profile.Money(d.int(fAmount)),
		Currency: d.str(fCurrency),
		Paid:     d.bool(fPaid),
	}
	return i, d.err
}

func encodeInquiry(q profile.Inquiry) []string {
	return []string{
		fClosed, encodeBool(q.Closed),
		fDescription, q.Description,
		fSubmitted, encodeTime(q.Submitted),
		fEmail, q.SubmitterEmail,
		fName, q.SubmitterName,
	}
}

// decodeInquiry decodes an inquiry hash; the ID stays empty (not stored).
func decodeInquiry(m map[string]string) (profile.Inquiry, error) {
	return inquiryFrom("", &decoder{m: m})
}

func inquiryFrom(id string, d *decoder) (profile.Inquiry, error) {
	q := profile.Inquiry{
		ID:             id,
		Closed:         d.bool(fClosed),
		Description:    d.str(fDescription),
		Submitted:      d.time(fSubmitted),
		SubmitterEmail: d.str(fEmail),
		SubmitterName:  d.str(fName),
	}
	return q, d.err
}

// RFC 3339 in UTC; the Nano layout keeps sub-second precision when there is
// any and prints plain RFC 3339 when there is none.
func encodeTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func encodeBool(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// decoder reads fields of a stored hash and remembers the first problem, so
// that decode functions stay one struct literal each. Every field must be
// present: a hash missing one was not written by this package.
//
// The hash comes as a map (HGETALL, the Lua fallback) or, on the hot path,
// as an HMGET reply: fields and the values in that order, read in place
// from rueidis's reply without building a map (a map per hash was a
// quarter of the allocated bytes of a page read).
type decoder struct {
	m      map[string]string
	fields []string
	vals   []rueidis.RedisMessage
	next   int // where the next field is likely to be: decoders read in order
	err    error
}

// resetHMGET points d at the reply vals of HMGET fields. It reports false
// when the hash does not exist (every value nil). Callers keep d on their
// stack: a decoder per hash read was an allocation each.
func (d *decoder) resetHMGET(fields []string, vals []rueidis.RedisMessage) bool {
	*d = decoder{fields: fields, vals: vals}
	for i := range vals {
		if !vals[i].IsNil() {
			return true
		}
	}
	return false
}

// lookup returns field's value and whether the hash has it.
func (d *decoder) lookup(field string) (string, bool) {
	if d.fields == nil {
		v, ok := d.m[field]
		return v, ok
	}
	i := d.next
	if i >= len(d.fields) || d.fields[i] != field {
		i = slices.Index(d.fields, field)
	}
	if i < 0 || i >= len(d.vals) || d.vals[i].IsNil() {
		return "", false
	}
	d.next = i + 1
	v, err := d.vals[i].ToString()
	return v, err == nil
}

func (d *decoder) fail(field, v string, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: field %s=%q: %v", errCorrupt, field, v, err)
	}
}

func (d *decoder) str(field string) string {
	v, ok := d.lookup(field)
	if !ok {
		d.fail(field, "", errors.New("missing"))
	}
	return v
}

func (d *decoder) int(field string) int64 {
	v := d.str(field)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		d.fail(field, v, err)
	}
	return n
}

// optInt is int for a field that older writers did not write: missing is 0.
func (d *decoder) optInt(field string) int64 {
	if _, ok := d.lookup(field); !ok {
		return 0
	}
	return d.int(field)
}

func (d *decoder) bool(field string) bool {
	switch v := d.str(field); v {
	case "1":
		return true
	case "0":
		return false
	default:
		d.fail(field, v, errors.New("want 0 or 1"))
		return false
	}
}

func (d *decoder) time(field string) time.Time {
	v := d.str(field)
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		d.fail(field, v, err)
	}
	return t
}

func (d *decoder) uuid(field string) uuid.UUID {
	v := d.str(field)
	id, err := uuid.Parse(v)
	if err != nil {
		d.fail(field, v, err)
	}
	return id
}
