package deploy_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// clientTimeout only keeps a broken deployment from hanging the test: an
// answer that takes this long is a hang. No assertion uses a duration.
const clientTimeout = 60 * time.Second

// browser is a client from outside: it trusts the test's certificate,
// keeps cookies, does not follow redirects, and records every cookie any
// answer sets, so that the test can check them all.
type browser struct {
	c *http.Client
	*cookieLog
}

// cookieLog is every Set-Cookie the deployment sent to a browser.
type cookieLog struct {
	mu  sync.Mutex
	all []*http.Cookie
}

func (l *cookieLog) seen() []*http.Cookie {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*http.Cookie(nil), l.all...)
}

type recordCookies struct {
	next http.RoundTripper
	log  *cookieLog
}

func (r recordCookies) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err == nil {
		r.log.mu.Lock()
		r.log.all = append(r.log.all, resp.Cookies()...)
		r.log.mu.Unlock()
	}
	return resp, err
}

func newBrowser(certs *x509.CertPool, log *cookieLog) *browser {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs}, ForceAttemptHTTP2: true}
	return &browser{
		cookieLog: log,
		c: &http.Client{
			Jar:           jar,
			Timeout:       clientTimeout,
			Transport:     recordCookies{next: tr, log: log},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// answer is one response, read to the end.
type answer struct {
	*http.Response
	body string
}

// do sends one request; hdr are header name/value pairs. A transport error
// fails the test: every request here must get an answer.
func (b *browser) do(t *testing.T, method, u, body string, hdr ...string) answer {
	t.Helper()
	a, err := b.try(method, u, body, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	return a
}

func (b *browser) try(method, u, body string, hdr ...string) (answer, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		return answer{}, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{resp, string(data)}, nil
}

var csrfField = regexp.MustCompile(`name="_csrf"\s+value="([^"]+)"`)

func csrfFrom(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no _csrf field in the page:\n%s", page)
	}
	return m[1]
}

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

const formType = "application/x-www-form-urlencoded"

// formLogin signs in through the HTML form as a browser does: GET the
// form (CSRF cookie and token), POST it. It returns the POST's answer and
// the session cookie it set.
func (b *browser) formLogin(t *testing.T, base, email, password string, hdr ...string) (answer, *http.Cookie) {
	t.Helper()
	page := b.do(t, "GET", base+"/login", "")
	wantStatus(t, page, http.StatusOK)
	a := b.do(t, "POST", base+"/login", form("email", email, "password", password, "_csrf", csrfFrom(t, page.body)),
		append([]string{"Content-Type", formType}, hdr...)...)
	for _, ck := range a.Cookies() {
		if strings.HasSuffix(ck.Name, "pc_session") {
			return a, ck
		}
	}
	return a, nil
}

// apiLogin signs in through the JSON API and returns the bearer token.
func (b *browser) apiLogin(t *testing.T, base, email, password string, hdr ...string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	a := b.do(t, "POST", base+"/api/login", string(body), append([]string{"Content-Type", "application/json"}, hdr...)...)
	wantStatus(t, a, http.StatusOK)
	return tokenFrom(t, a)
}

func tokenFrom(t *testing.T, a answer) string {
	t.Helper()
	var r struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(a.body), &r); err != nil || r.Token == "" {
		t.Fatalf("login answer %q: no token (%v)", a.body, err)
	}
	return r.Token
}

func wantStatus(t *testing.T, a answer, want int) {
	t.Helper()
	if a.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body: %.300s", a.Request.Method, a.Request.URL, a.StatusCode, want, a.body)
	}
}

// wantHSTS: HTTPS answers tell browsers to use nothing else, for a year at
// least, subdomains included.
func wantHSTS(t *testing.T, a answer) {
	t.Helper()
	h := a.Header.Get("Strict-Transport-Security")
	var maxAge int
	if _, err := fmt.Sscanf(h, "max-age=%d;", &maxAge); err != nil || maxAge < 365*24*3600 || !strings.Contains(h, "includeSubDomains") {
		t.Errorf("%s %s: Strict-Transport-Security %q, want max-age of a year or more and includeSubDomains", a.Request.Method, a.Request.URL.Path, h)
	}
}
