package web

import (
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/internal/jsonstr"
	"github.com/profilecache/profilecache/profile"
)

// Hand-written encoders for the two hottest answers, GET /api/me and a page
// of orders: encoding/json's reflection was the largest single cost of a
// hot request after the HTTP stack itself. They write exactly what
// encoding/json writes for basicJSON and pageJSON[orderJSON] (json.go), and
// the tests hold them to that byte for byte (jsonenc_test.go).

// hdrJSON is the Content-Type of every JSON answer, as echo's c.JSON sets it.
var hdrJSON = []string{echo.MIMEApplicationJSON}

// jsonBufs recycles answer buffers; ones grown past maxPooledJSON are left
// to the GC so that one huge answer does not pin memory.
var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledJSON = 64 << 10

// writeJSON answers status with the JSON that build appends, plus the
// newline that json.Encoder (behind c.JSON) ends with.
func writeJSON(c echo.Context, status int, build func([]byte) []byte) error {
	bp := jsonBufs.Get().(*[]byte)
	b := append(build((*bp)[:0]), '\n')
	res := c.Response()
	res.Header()["Content-Type"] = hdrJSON
	res.WriteHeader(status)
	_, err := res.Write(b)
	if cap(b) <= maxPooledJSON {
		*bp = b
		jsonBufs.Put(bp)
	}
	return err
}

// appendBasicJSON is basicJSON's encoding of b.
func appendBasicJSON(dst []byte, b profile.Basic) []byte {
	dst = append(dst, `{"id":"`...)
	dst = appendUUID(dst, b.ID)
	dst = append(dst, `","first_name":`...)
	dst = appendJSONString(dst, b.FirstName)
	dst = append(dst, `,"last_name":`...)
	dst = appendJSONString(dst, b.LastName)
	dst = append(dst, `,"email":`...)
	dst = appendJSONString(dst, b.Email)
	dst = append(dst, `,"phone":`...)
	dst = appendJSONString(dst, b.Phone)
	dst = append(dst, `,"address_line":`...)
	dst = appendJSONString(dst, b.AddressLine)
	dst = append(dst, `,"postal_code":`...)
	dst = appendJSONString(dst, b.PostalCode)
	dst = append(dst, `,"city":`...)
	dst = appendJSONString(dst, b.City)
	dst = append(dst, `,"country":`...)
	dst = appendJSONString(dst, b.Country)
	dst = append(dst, `,"marketing_permission":`...)
	dst = strconv.AppendBool(dst, b.MarketingPermission)
	dst = append(dst, `,"created":`...)
	dst = appendJSONTime(dst, b.Created)
	return append(dst, '}')
}

// appendOrderPageJSON is pageJSON[orderJSON]'s encoding of one page.
func appendOrderPageJSON(dst []byte, s profile.Slice[profile.Order], p profile.Page) []byte {
	dst = append(dst, `{"items":[`...)
	for i, o := range s.Items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendOrderJSON(dst, o)
	}
	dst = append(dst, `],"offset":`...)
	dst = strconv.AppendInt(dst, int64(p.Offset), 10)
	dst = append(dst, `,"limit":`...)
	dst = strconv.AppendInt(dst, int64(p.Limit), 10)
	dst = append(dst, `,"total":`...)
	dst = strconv.AppendInt(dst, int64(s.Total), 10)
	return append(dst, '}')
}

// appendOrderJSON is orderJSON's encoding of o.
func appendOrderJSON(dst []byte, o profile.Order) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, o.ID)
	dst = append(dst, `,"number":`...)
	dst = appendJSONString(dst, o.Number)
	dst = append(dst, `,"date":`...)
	dst = appendJSONTime(dst, o.Date)
	dst = append(dst, `,"status":`...)
	dst = appendJSONString(dst, o.Status)
	dst = append(dst, `,"total":"`...)
	dst = appendAmount(dst, o.Total)
	dst = append(dst, `","currency":`...)
	dst = appendJSONString(dst, o.Currency)
	dst = append(dst, `,"item_count":`...)
	dst = strconv.AppendInt(dst, int64(o.ItemCount), 10)
	dst = append(dst, `,"shipping_city":`...)
	dst = appendJSONString(dst, o.ShippingCity)
	return append(dst, '}')
}

// appendJSONTime appends t as rfc3339 formats it, quoted. A time outside
// years 0-9999 formats with characters that still need no escaping.
func appendJSONTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339)
	return append(dst, '"')
}

// appendUUID appends the canonical form of id, as id.String() gives it.
func appendUUID(dst []byte, id [16]byte) []byte {
	var buf [36]byte
	const hexDigits = "0123456789abcdef"
	j := 0
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			buf[j] = '-'
			j++
		}
		buf[j], buf[j+1] = hexDigits[c>>4], hexDigits[c&0xf]
		j += 2
	}
	return append(dst, buf[:]...)
}

// appendJSONString appends s as encoding/json would.
func appendJSONString(dst []byte, s string) []byte {
	return jsonstr.Append(dst, s, jsonstr.EncodingJSON)
}
