package nginxtest_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/profilecache/profilecache/internal/nginxtest"
)

func TestStartServesPlainAndTLS(t *testing.T) {
	var cert nginxtest.Cert
	s := nginxtest.Start(t, 2, func(dir string, ports []int) (string, error) {
		cert = nginxtest.SelfSignedCert(t, dir)
		return fmt.Sprintf(`
    ssl_certificate %s;
    ssl_certificate_key %s;
    server {
        listen 127.0.0.1:%d;
        listen 127.0.0.1:%d ssl;
        location / { return 200 "scheme=$scheme"; }
    }`, cert.CertFile, cert.KeyFile, ports[0], ports[1]), nil
	})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}}}
	for _, tc := range []struct{ url, want string }{
		{"http://" + s.Addr(0) + "/", "scheme=http"},
		{"https://" + s.Addr(1) + "/", "scheme=https"},
	} {
		resp, err := client.Get(tc.url)
		if err != nil {
			t.Fatalf("GET %s: %v\n%s", tc.url, err, s.Log())
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := strings.TrimSpace(string(body)); resp.StatusCode != http.StatusOK || got != tc.want {
			t.Errorf("GET %s: %d %q, want 200 %q", tc.url, resp.StatusCode, got, tc.want)
		}
	}
	s.Stop()
	if _, err := client.Get("http://" + s.Addr(0) + "/"); err == nil {
		t.Error("nginx still answers after Stop")
	}
}

func TestStartFailsOnBadConfig(t *testing.T) {
	// A broken configuration must not hang: Start reports nginx's exit.
	// Run it in a sub-test whose failure is expected, via a fake TB.
	ft := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = recover() }() // fakeTB.Fatalf panics to stop Start
		nginxtest.Start(ft, 1, func(string, []int) (string, error) { return "this is not nginx syntax;", nil })
	}()
	<-done
	if !ft.failed || !strings.Contains(ft.msg, "exited during start") {
		t.Fatalf("Start with a broken config: failed=%v msg=%q, want a failure saying nginx exited", ft.failed, ft.msg)
	}
}

type fakeTB struct {
	testing.TB
	failed bool
	msg    string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	panic("fatal")
}
func (f *fakeTB) Logf(string, ...any) {}
