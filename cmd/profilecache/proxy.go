package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
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

// secureRequest approves a Secure session cookie for requests that came in
// over HTTPS as schemeExtractor sees them, so that behind a TLS-terminating
// trusted proxy the cookie never travels in clear while plain-HTTP local runs
// keep working. Without trusted proxies a direct connection is never TLS
// here, and COOKIE_SECURE alone decides.
func secureRequest(proxies []*net.IPNet) func(*http.Request) bool {
	if len(proxies) == 0 {
		return nil
	}
	scheme := schemeExtractor(proxies)
	return func(r *http.Request) bool { return scheme(r) == "https" }
}
