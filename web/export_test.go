package web

import (
	"encoding/base64"
	"fmt"
)

// Internals opened to the external web_test package.

var (
	FormatAmount   = formatAmount
	FormatMoney    = formatMoney
	FormatDate     = formatDate
	DescribeDevice = describeDevice
	AddressKey     = addressKey
	AccountKey     = accountKey
)

// ExecuteZeroPages executes every parsed page with its zero-value page
// struct, the way a handler with no data would.
func ExecuteZeroPages(s *Server) (map[string]string, error) {
	zero := map[string]any{
		"login":    loginPage{},
		"profile":  profilePage{},
		"sessions": sessionsPage{},
		"error":    errorPage{},
	}
	out := make(map[string]string, len(pageNames))
	for _, name := range pageNames {
		data, ok := zero[name]
		if !ok {
			return nil, fmt.Errorf("page %q has no zero-value struct in ExecuteZeroPages", name)
		}
		b, err := s.renderBytes(name, data)
		if err != nil {
			return nil, err
		}
		out[name] = string(b)
	}
	if len(zero) != len(pageNames) {
		return nil, fmt.Errorf("ExecuteZeroPages knows %d pages, the server parses %d", len(zero), len(pageNames))
	}
	return out, nil
}

// CSRF internals, so that tests can make the tokens a page would carry.
const CSRFCookieName = csrfCookieName

// SessionCSRFToken is the token of sessionID's pages under key.
func SessionCSRFToken(key []byte, sessionID string) string {
	return base64.RawURLEncoding.EncodeToString(mac(key, purposeSession, sessionID))
}

// LoginCSRFToken is the login form's token for the nonce cookie under key.
func LoginCSRFToken(key []byte, nonce string) string {
	return base64.RawURLEncoding.EncodeToString(mac(key, purposeLogin, nonce))
}
