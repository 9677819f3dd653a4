package main

import (
	"fmt"
	"net"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/auth"
	"github.com/profilecache/profilecache/web"
)

// parseTrustedProxies parses TRUSTED_PROXIES: comma-separated IP addresses
// or CIDR ranges of the reverse proxies allowed to speak for a client.
func parseTrustedProxies(v string) ([]*net.IPNet, error) {
	var nets []*net.IPNet
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if strings.Contains(part, "/") {
			_, n, err := net.ParseCIDR(part)
			if err != nil {
				return nil, fmt.Errorf("invalid CIDR %q (use e.g. 10.0.0.0/8)", part)
			}
			nets = append(nets, n)
			continue
		}
		ip := net.ParseIP(part)
		if ip == nil {
			return nil, fmt.Errorf("invalid IP address %q", part)
		}
		bits := 8 * net.IPv6len
		if ip4 := ip.To4(); ip4 != nil {
			ip, bits = ip4, 8*net.IPv4len
		}
		nets = append(nets, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
	}
	if len(nets) == 0 {
		return nil, fmt.Errorf("no address in %q", v)
	}
	return nets, nil
}

// trustOptions trusts exactly the configured proxies. echo's defaults also
// trust every loopback, link-local and private address, and on a shared
// host or network those include clients, who could then forge their address.
func trustOptions(proxies []*net.IPNet) []echo.TrustOption {
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range proxies {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return opts
}

// ipExtractor finds the client address (for the login rate limit and the
// logs): the right-most X-Forwarded-For entry that is not a trusted proxy,
// or the peer address when no proxy is trusted.
func ipExtractor(proxies []*net.IPNet) echo.IPExtractor {
	if len(proxies) == 0 {
		return echo.ExtractIPDirect()
	}
	return echo.ExtractIPFromXFFHeader(trustOptions(proxies)...)
}

// schemeExtractor tells whether the client reached us over HTTPS: the
// connection's own TLS, or X-Forwarded-Proto from a trusted proxy only.
func schemeExtractor(proxies []*net.IPNet) echo.SchemeExtractor {
	if len(proxies) == 0 {
		return echo.ExtractSchemeDirect()
	}
	return echo.ExtractSchemeFromHeaders(trustOptions(proxies)...)
}

// schemeSessions marks the session cookie Secure for requests that came in
// over HTTPS (as schemeExtractor sees them), even with COOKIE_SECURE=false:
// behind a TLS-terminating proxy the cookie then never travels in clear,
// while plain-HTTP local runs keep working. auth.Manager fixes Secure at
// construction, so a second Manager with the same keys and store writes the
// Secure variant; everything but the cookie goes to the plain one.
type schemeSessions struct {
	*auth.Manager // plain cookies, and every other method
	secure        *auth.Manager
	scheme        echo.SchemeExtractor
}

func (s schemeSessions) SetCookie(c echo.Context, t auth.Issued) { s.pick(c).SetCookie(c, t) }
func (s schemeSessions) ClearCookie(c echo.Context)              { s.pick(c).ClearCookie(c) }

func (s schemeSessions) pick(c echo.Context) *auth.Manager {
	if s.scheme(c.Request()) == "https" {
		return s.secure
	}
	return s.Manager
}

// proxySessions returns the Sessions that web uses: mgr itself when the
// cookie is always Secure or no proxy is trusted (a direct connection is
// never TLS here), else a schemeSessions.
func proxySessions(mgr *auth.Manager, cfg auth.Config, proxies []*net.IPNet) (web.Sessions, error) {
	if cfg.CookieSecure || len(proxies) == 0 {
		return mgr, nil
	}
	cfg.CookieSecure = true
	secure, err := auth.New(cfg)
	if err != nil {
		return nil, err
	}
	return schemeSessions{Manager: mgr, secure: secure, scheme: schemeExtractor(proxies)}, nil
}
