package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTrustedProxiesConfig(t *testing.T) {
	tests := []struct {
		env     string
		want    string // fmt of the parsed ranges
		wantErr string
	}{
		{env: "", want: "[]"},
		{env: "10.0.0.7", want: "[10.0.0.7/32]"},
		{env: " 172.30.80.10 , 10.0.0.0/8 ", want: "[172.30.80.10/32 10.0.0.0/8]"},
		{env: "10.1.2.3/8", want: "[10.0.0.0/8]"},
		{env: "::1,fd00::/8", want: "[::1/128 fd00::/8]"},
		{env: "10.0.0.300", wantErr: `TRUSTED_PROXIES: invalid IP address "10.0.0.300"`},
		{env: "10.0.0.0/33", wantErr: `TRUSTED_PROXIES: invalid CIDR "10.0.0.0/33"`},
		{env: "nginx", wantErr: `TRUSTED_PROXIES: invalid IP address "nginx"`},
		{env: " , ", wantErr: `TRUSTED_PROXIES: no address in`},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			cfg, err := loadConfig(nil, func(k string) string {
				if k == "TRUSTED_PROXIES" {
					return tc.env
				}
				return ""
			})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(cfg.TrustedProxies); got != tc.want {
				t.Errorf("TrustedProxies = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestProxyExtractors(t *testing.T) {
	proxies, err := parseTrustedProxies("10.0.0.5")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		trusted    bool // TRUSTED_PROXIES set
		peer       string
		xff, proto string
		wantIP     string
		wantScheme string
	}{
		{"no proxy trusted: headers ignored", false, "10.0.0.5", "203.0.113.9", "https", "10.0.0.5", "http"},
		{"from the proxy", true, "10.0.0.5", "203.0.113.9", "https", "203.0.113.9", "https"},
		{"from the proxy, forged entry on the left", true, "10.0.0.5", "1.2.3.4, 203.0.113.9", "http", "203.0.113.9", "http"},
		{"not from the proxy", true, "203.0.113.9", "1.2.3.4", "https", "203.0.113.9", "http"},
		// echo trusts loopback and private peers by default; we must not.
		{"loopback peer is not a proxy", true, "127.0.0.1", "1.2.3.4", "https", "127.0.0.1", "http"},
		{"private peer is not a proxy", true, "192.168.1.9", "1.2.3.4", "https", "192.168.1.9", "http"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p = proxies
			if !tc.trusted {
				p = nil
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.peer + ":4321"
			r.Header.Set("X-Forwarded-For", tc.xff)
			r.Header.Set("X-Forwarded-Proto", tc.proto)
			if got := ipExtractor(p)(r); got != tc.wantIP {
				t.Errorf("client IP = %q, want %q", got, tc.wantIP)
			}
			if got := schemeExtractor(p)(r); got != tc.wantScheme {
				t.Errorf("scheme = %q, want %q", got, tc.wantScheme)
			}
		})
	}
}
