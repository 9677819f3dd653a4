package web

import (
	"math"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/profile"
)

// maxOffset bounds offsets so that offset+limit cannot overflow in any
// store; no list comes anywhere near it.
const maxOffset = math.MaxInt32

// parsePage reads ?offset= and ?limit= (defaults 0 and profile.DefaultLimit).
// It never clamps: a value that is not a whole number, is negative, or is
// out of range (limit 1..profile.MaxLimit) is a 400 that says so, because a
// client asking for 1000 items should learn that it gets at most 100. An
// empty parameter counts as absent.
func parsePage(c echo.Context) (profile.Page, error) {
	p := profile.Page{Offset: 0, Limit: profile.DefaultLimit}
	var err error
	if v := c.QueryParam("offset"); v != "" {
		if p.Offset, err = parseCount(v); err != nil || p.Offset > maxOffset {
			return profile.Page{}, badRequest("offset must be a whole number from 0 to %d", maxOffset)
		}
	}
	if v := c.QueryParam("limit"); v != "" {
		if p.Limit, err = parseCount(v); err != nil || p.Limit < 1 || p.Limit > profile.MaxLimit {
			return profile.Page{}, badRequest("limit must be a whole number from 1 to %d", profile.MaxLimit)
		}
	}
	return p, nil
}

// parseCount accepts ASCII digits only: no sign, no spaces, no exponent.
// Values too large for an int are errors, not wrapped-around numbers.
func parseCount(s string) (int, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.Atoi(s)
}

// maxProfilePage is the last ?page= whose offset still fits maxOffset.
const maxProfilePage = maxOffset/ordersPerPage + 1

// parsePageNumber reads the 1-based ?page= of the profile page.
func parsePageNumber(c echo.Context) (int, error) {
	v := c.QueryParam("page")
	if v == "" {
		return 1, nil
	}
	n, err := parseCount(v)
	if err != nil || n < 1 || n > maxProfilePage {
		return 0, badRequest("page must be a whole number from 1 to %d", maxProfilePage)
	}
	return n, nil
}
