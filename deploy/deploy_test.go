package deploy_test

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/profilecache/profilecache/internal/composetest"
	"github.com/profilecache/profilecache/internal/nginxtest"
)

// The deployment as docker-compose.yml describes it, started for real: the
// profilecache image built from ./Dockerfile, Redis, the two services and
// nginx with deploy/nginx/default.conf over HTTPS, checked from outside as
// a user would (docs/deploy.md "The deploy test"). The only changes are what a user
// would also set: the environment (SESSION_SECRET, GOPROXY as a build
// argument, BACKEND_LATENCY), and an override file that publishes nginx on
// free loopback ports and mounts the test's certificate where
// deploy/tls/ is mounted.

// slowLogin is BACKEND_LATENCY: every login waits this long at the mock
// CRM, so that the graceful-stop test can stop a service while a login is
// in flight. It only slows the test down; no assertion depends on it.
const slowLogin = "3s"

// healthyTimeout bounds `up --wait` and the waits for a restarted service
// (generous: the machines are small and busy).
const healthyTimeout = 5 * time.Minute

// demo accounts of the mock CRM.
const (
	aliceEmail, alicePassword = "alice@example.com", "alice-secret"
	bobEmail, bobPassword     = "bob@example.com", "bob-secret"
	carolEmail, carolPassword = "carol@example.com", "carol-secret"
)

const imageRef = "profilecache:local"

type deployment struct {
	p        *composetest.Project
	https    string // https://127.0.0.1:port (nginx's 443)
	http     string // http://127.0.0.1:port (nginx's 80)
	certs    *x509.CertPool
	cookies  *cookieLog
	figures  []string // what the closing log line reports
	figuresM sync.Mutex
}

func (d *deployment) report(format string, args ...any) {
	d.figuresM.Lock()
	defer d.figuresM.Unlock()
	d.figures = append(d.figures, fmt.Sprintf(format, args...))
}

func (d *deployment) browser() *browser { return newBrowser(d.certs, d.cookies) }

func TestDeploy(t *testing.T) {
	e := composetest.Start(t)
	d := start(t, e)
	defer func() { t.Logf("deploy figures (noisy: shared machine):\n  %s", strings.Join(d.figures, "\n  ")) }()

	t.Run("Image", d.testImage)
	t.Run("Edge", d.testEdge)
	t.Run("SharedSessions", d.testSharedSessions)
	t.Run("RedisRestart", d.testRedisRestart)
	t.Run("GracefulStop", d.testGracefulStop)
	t.Run("CookiesSecure", d.testCookies)
	t.Run("StillHealthy", d.testStillHealthy)
	if t.Failed() {
		d.p.Dump(t) // while it still runs
	}
	t.Run("DownLeavesNothing", func(t *testing.T) {
		if err := d.p.Down(); err != nil {
			t.Error(err)
		}
	})
}

// start builds the image and brings the deployment up, as
// `docker compose up --build -d --wait` does, timing the two halves.
func start(t *testing.T, e *composetest.Engine) *deployment {
	dir := t.TempDir()

	// The certificate, where the deployment mounts deploy/tls/ from.
	tlsDir := filepath.Join(dir, "tls")
	if err := os.Mkdir(tlsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cert := nginxtest.SelfSignedCert(t, tlsDir)
	for from, to := range map[string]string{cert.CertFile: "tls.crt", cert.KeyFile: "tls.key"} {
		if err := os.Rename(from, filepath.Join(tlsDir, to)); err != nil {
			t.Fatal(err)
		}
	}

	// Published ports: free ones on loopback instead of 443 and 80, which a
	// user's machine (or another test) may be using.
	httpsPort, httpPort := freePort(t), freePort(t)
	override := filepath.Join(dir, "compose.override.yml")
	overrideYAML := fmt.Sprintf(`# The test's own ports and certificate; everything else as in docker-compose.yml.
services:
  nginx:
    ports: !override
      - "127.0.0.1:%d:443"
      - "127.0.0.1:%d:80"
    volumes:
      - %s:/etc/nginx/tls:ro
`, httpsPort, httpPort, tlsDir)
	if err := os.WriteFile(override, []byte(overrideYAML), 0o644); err != nil {
		t.Fatal(err)
	}

	secret := make([]byte, 48)
	_, _ = rand.Read(secret)
	env := map[string]string{
		"SESSION_SECRET":  base64.StdEncoding.EncodeToString(secret),
		"BACKEND_LATENCY": slowLogin,
		// The module proxy this machine uses, as a build argument.
		"GOPROXY": goEnv(t, "GOPROXY"),
	}
	p := e.NewProject(t, "pcdeploy", []string{filepath.Join(e.Root, "docker-compose.yml"), override}, env)
	d := &deployment{
		p:       p,
		https:   fmt.Sprintf("https://127.0.0.1:%d", httpsPort),
		http:    fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		certs:   cert.Pool,
		cookies: &cookieLog{},
	}

	// docker-compose.yml fixes its network's subnet (the services trust
	// nginx's fixed address), so a running deployment of the same file
	// (a user's own, or another test's) is in the way.
	var model struct {
		Networks map[string]struct {
			IPAM struct{ Config []struct{ Subnet string } }
		}
	}
	if err := json.Unmarshal([]byte(p.MustCompose(t, "config", "--format", "json")), &model); err != nil {
		t.Fatal(err)
	}
	ids := strings.Fields(e.Must(t, "network", "ls", "--quiet"))
	taken := e.Must(t, append([]string{"network", "inspect", "--format", "{{.Name}} {{range .IPAM.Config}}{{.Subnet}} {{end}}"}, ids...)...)
	for _, n := range model.Networks {
		for _, c := range n.IPAM.Config {
			for line := range strings.SplitSeq(taken, "\n") {
				if f := strings.Fields(line); len(f) > 1 && slices.Contains(f[1:], c.Subnet) {
					t.Fatalf("docker network %s already uses %s, the subnet of docker-compose.yml: take that deployment down first", f[0], c.Subnet)
				}
			}
		}
	}

	old := e.ImageID(imageRef)
	begin := time.Now()
	p.MustCompose(t, "build")
	d.report("image build (docker compose build, BuildKit via buildx): %.1f s", time.Since(begin).Seconds())
	// Both services build the image; the one not tagged last, and the
	// previous run's, are left untagged: remove them (in use, they stay).
	dangling, _ := e.Run(context.Background(), nil, "image", "ls", "--quiet", "--filter", "dangling=true",
		"--filter", "label=com.docker.compose.project="+p.Name)
	if id := e.ImageID(imageRef); old != "" && id != old {
		dangling += " " + old
	}
	for _, id := range strings.Fields(dangling) {
		_, _ = e.Run(context.Background(), nil, "image", "rm", id)
	}

	begin = time.Now()
	p.MustCompose(t, "up", "--detach", "--no-build", "--wait", "--wait-timeout", strconv.Itoa(int(healthyTimeout.Seconds())))
	d.report("docker compose up -d --wait, until all four services were healthy: %.1f s", time.Since(begin).Seconds())
	for svc, state := range p.Health(t) {
		if state != "running healthy" {
			t.Errorf("after up --wait, %s is %q, want running healthy", svc, state)
		}
	}
	return d
}

// testImage: the product image is the one built from ./Dockerfile; it runs
// as a non-root user and holds no shell.
func (d *deployment) testImage(t *testing.T) {
	p := d.p
	var img struct {
		Size   int64
		Config struct {
			User       string
			Entrypoint []string
			Labels     map[string]string
		}
	}
	if err := json.Unmarshal([]byte(p.Must(t, "image", "inspect", "--format", "{{json .}}", imageRef)), &img); err != nil {
		t.Fatal(err)
	}
	d.report("image %s: %.1f MB", imageRef, float64(img.Size)/1e6)
	// Built by this test's `docker compose build` from ./Dockerfile, not
	// a stand-in (stand-ins are only ever the official images' names).
	if got := img.Config.Labels["com.docker.compose.project"]; got != p.Name || !slices.Equal(img.Config.Entrypoint, []string{"/profilecache"}) {
		t.Errorf("%s: built by project %q with entrypoint %v, want this test's build of ./Dockerfile", imageRef, got, img.Config.Entrypoint)
	}
	if u := img.Config.User; u == "" || u == "root" || strings.HasPrefix(u, "0") || strings.HasPrefix(u, "root:") {
		t.Errorf("image user %q, want a non-root user", u)
	}

	for _, svc := range []string{"sessions", "customers"} {
		// The running process, as the kernel sees it.
		pid := p.Inspect(t, svc, "{{.State.Pid}}")
		status, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(string(status), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && (f[0] == "Uid:" || f[0] == "Gid:") && slices.Contains(f[1:], "0") {
				t.Errorf("%s's process runs with %s", svc, line)
			}
		}
		if img := p.Inspect(t, svc, "{{.Config.Image}}"); img != imageRef {
			t.Errorf("%s runs image %q, want %s", svc, img, imageRef)
		}
	}

	// No shell to exec into.
	for _, sh := range []string{"sh", "/bin/sh", "bash", "/busybox/sh"} {
		if out, err := p.Compose(context.Background(), "exec", "-T", "sessions", sh, "-c", "true"); err == nil {
			t.Errorf("docker compose exec sessions %s succeeded (%q): the image has a shell", sh, out)
		}
	}
	// And none anywhere in the file system: the only executable is the
	// binary.
	fs, err := p.Run(context.Background(), nil, "export", p.ContainerID(t, "sessions"))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(strings.NewReader(fs))
	var executables []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := path.Clean("/" + h.Name)
		if dockerAdds[name] || strings.HasPrefix(name, "/dev/") {
			continue // the container's, not the image's
		}
		switch base := path.Base(name); {
		case slices.Contains([]string{"sh", "bash", "ash", "dash", "zsh", "busybox"}, base):
			t.Errorf("the image holds %s", name)
		case h.Typeflag == tar.TypeReg && h.Mode&0o111 != 0:
			executables = append(executables, name)
		}
	}
	if !slices.Equal(executables, []string{"/profilecache"}) {
		t.Errorf("executables in the image: %v, want only /profilecache", executables)
	}
}

// dockerAdds are files Docker puts into every container it runs.
var dockerAdds = map[string]bool{"/.dockerenv": true, "/etc/hostname": true, "/etc/hosts": true, "/etc/resolv.conf": true}

// testEdge: what the world sees of nginx. HTTPS with the shipped TLS
// configuration, HSTS, plain HTTP only redirecting, the two kinds of login,
// and nothing internal reachable.
func (d *deployment) testEdge(t *testing.T) {
	b := d.browser()

	// Plain HTTP: a permanent redirect to the same path over HTTPS, and
	// nothing else (no cookie, no service reached).
	for _, p := range []string{"/", "/login?next=%2Fprofile", "/api/me", "/metrics", "/internal/profile-changed"} {
		a := b.do(t, "GET", d.http+p, "")
		if a.StatusCode != http.StatusMovedPermanently {
			t.Errorf("GET http://…%s: %d, want 301", p, a.StatusCode)
		}
		// nginx redirects to the standard port; the test's is another one.
		if got, want := a.Header.Get("Location"), "https://127.0.0.1"+p; got != want {
			t.Errorf("GET http://…%s: Location %q, want %q", p, got, want)
		}
		if len(a.Cookies()) > 0 {
			t.Errorf("GET http://…%s set cookies over plain HTTP: %v", p, a.Cookies())
		}
	}
	a := b.do(t, "POST", d.http+"/api/login", `{}`, "Content-Type", "application/json")
	if a.StatusCode != http.StatusMovedPermanently {
		t.Errorf("POST http://…/api/login: %d, want 301", a.StatusCode)
	}

	// HTTPS: TLS 1.2 or 1.3, HTTP/2, HSTS on every answer.
	a = b.do(t, "GET", d.https+"/healthz", "")
	wantStatus(t, a, http.StatusOK)
	wantHSTS(t, a)
	if a.TLS == nil || a.TLS.Version < 0x0303 {
		t.Errorf("TLS state %+v, want TLS 1.2 or later", a.TLS)
	}
	if a.ProtoMajor != 2 {
		t.Errorf("nginx answered over %s, want HTTP/2", a.Proto)
	}

	// A browser's login: the form with its CSRF token and cookie, then the
	// session cookie.
	a, session := b.formLogin(t, d.https, aliceEmail, alicePassword)
	wantStatus(t, a, http.StatusSeeOther)
	wantHSTS(t, a)
	if got := a.Header.Get("Location"); got != "/profile" {
		t.Errorf("login: Location %q, want /profile", got)
	}
	if session == nil || session.Name != "__Host-pc_session" {
		t.Fatalf("login set session cookie %v, want __Host-pc_session", session)
	}
	a = b.do(t, "GET", d.https+"/profile", "")
	wantStatus(t, a, http.StatusOK)
	wantHSTS(t, a)
	if !strings.Contains(a.body, "Ångström") {
		t.Errorf("the profile page lacks the user's name:\n%.500s", a.body)
	}

	// An API client's login: a bearer token, no cookie needed.
	api := d.browser()
	token := api.apiLogin(t, d.https, carolEmail, carolPassword)
	a = api.do(t, "GET", d.https+"/api/me", "", "Authorization", "Bearer "+token)
	wantStatus(t, a, http.StatusOK)
	if !strings.Contains(a.body, carolEmail) {
		t.Errorf("/api/me: %.300s, want carol's profile", a.body)
	}

	// Not for the public: nginx answers 404 itself, however the path is
	// spelled, even to a signed-in browser.
	for _, h := range []struct{ method, path string }{
		{"GET", "/metrics"}, {"GET", "/readyz"}, {"GET", "/internal/profile-changed"},
		{"POST", "/internal/profile-changed"}, {"GET", "/%6Detrics"}, {"GET", "//metrics"},
	} {
		a := b.do(t, h.method, d.https+h.path, "")
		if a.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s from outside: %d, want 404", h.method, h.path, a.StatusCode)
		}
		if strings.Contains(a.body, "# TYPE") {
			t.Errorf("%s %s from outside: metrics leaked", h.method, h.path)
		}
		wantHSTS(t, a)
	}

	// And no other door: only nginx publishes ports.
	for _, svc := range []string{"redis", "sessions", "customers"} {
		var ports map[string][]struct{ HostIP, HostPort string }
		if err := json.Unmarshal([]byte(d.p.Inspect(t, svc, "{{json .NetworkSettings.Ports}}")), &ports); err != nil {
			t.Fatal(err)
		}
		for port, bindings := range ports {
			if len(bindings) > 0 {
				t.Errorf("%s publishes %s on %v: only nginx may be reachable from outside", svc, port, bindings)
			}
		}
	}
}

// testSharedSessions: a session made through the sessions service is valid
// on the customers service, and a logout through sessions ends it on
// customers with the very next request. The services' request logs show
// which one served what.
func (d *deployment) testSharedSessions(t *testing.T) {
	b := d.browser()
	loginID, profileID := requestID("login"), requestID("profile")
	a, session := b.formLogin(t, d.https, bobEmail, bobPassword, "X-Request-Id", loginID)
	wantStatus(t, a, http.StatusSeeOther)
	page := b.do(t, "GET", d.https+"/profile", "", "X-Request-Id", profileID)
	wantStatus(t, page, http.StatusOK)
	token := b.apiLogin(t, d.https, aliceEmail, alicePassword)
	wantStatus(t, b.do(t, "GET", d.https+"/api/me", "", "Authorization", "Bearer "+token), http.StatusOK)

	served := map[string]string{} // request id -> service
	for _, svc := range []string{"sessions", "customers"} {
		logs := d.p.Logs(t, svc)
		for _, id := range []string{loginID, profileID} {
			if strings.Contains(logs, `"`+id+`"`) {
				served[id] += svc
			}
		}
	}
	if served[loginID] != "sessions" || served[profileID] != "customers" {
		t.Errorf("the login was served by %q and the profile by %q, want sessions and customers", served[loginID], served[profileID])
	}

	// Log out through sessions (the form, with the page's token) ...
	a = b.do(t, "POST", d.https+"/logout", form("_csrf", csrfFrom(t, page.body)), "Content-Type", formType)
	wantStatus(t, a, http.StatusSeeOther)
	wantStatus(t, b.do(t, "POST", d.https+"/api/logout", "", "Authorization", "Bearer "+token), http.StatusNoContent)
	// ... and customers refuses both at once: no cache anywhere lets them in.
	replay := d.browser()
	u, _ := url.Parse(d.https)
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: session.Name, Value: session.Value, Secure: true}})
	a = replay.do(t, "GET", d.https+"/profile", "")
	if a.StatusCode != http.StatusSeeOther || !strings.HasPrefix(a.Header.Get("Location"), "/login") {
		t.Errorf("the logged-out cookie on /profile: %d to %q, want 303 to /login", a.StatusCode, a.Header.Get("Location"))
	}
	for _, c := range []struct {
		name string
		b    *browser
		hdr  []string
	}{{"cookie", replay, nil}, {"bearer token", d.browser(), []string{"Authorization", "Bearer " + token}}} {
		a := c.b.do(t, "GET", d.https+"/api/me", "", c.hdr...)
		if a.StatusCode != http.StatusUnauthorized || !strings.Contains(a.body, `"error"`) {
			t.Errorf("the logged-out %s on /api/me: %d %.200s, want 401 JSON", c.name, a.StatusCode, a.body)
		}
	}
}

// probe is one request of a poller and what became of it.
type probe struct {
	at, took time.Duration // since the poll began; how long the answer took
	status   int
	err      error
}

// poll sends GET path with the token through nginx until stop is closed,
// one request after another.
func (d *deployment) poll(path, token string, stop <-chan struct{}) []probe {
	b := d.browser()
	begin := time.Now()
	var got []probe
	for {
		select {
		case <-stop:
			return got
		default:
		}
		t0 := time.Now()
		a, err := b.try("GET", d.https+path, "", "Authorization", "Bearer "+token)
		pr := probe{at: t0.Sub(begin), took: time.Since(t0), err: err}
		if err == nil {
			pr.status = a.StatusCode
		}
		got = append(got, pr)
		time.Sleep(20 * time.Millisecond)
	}
}

// outage sums up a poll: the statuses seen, and the span from the first
// to the last answer that was not a 200.
func outage(probes []probe) (counts map[int]int, first, last time.Duration, errs []error) {
	counts = map[int]int{}
	first = -1
	for _, pr := range probes {
		if pr.err != nil {
			errs = append(errs, pr.err)
			continue
		}
		counts[pr.status]++
		if pr.status != http.StatusOK {
			if first < 0 {
				first = pr.at
			}
			last = pr.at + pr.took
		}
	}
	return counts, first, last, errs
}

// userKeys lists the Redis keys of every user (pc:{u:<uuid>}:...).
func (d *deployment) userKeys(t *testing.T) []string {
	t.Helper()
	out := d.p.MustCompose(t, "exec", "-T", "redis", "redis-cli", "--scan", "--pattern", "pc:{u:*")
	keys := strings.Fields(out)
	slices.Sort(keys)
	return keys
}

// outageAround polls /api/me (served by customers) and /api/sessions
// (served by sessions) with token through nginx while action runs, and on
// until both answer again.
func (d *deployment) outageAround(t *testing.T, token string, action func()) map[string][]probe {
	t.Helper()
	paths := []string{"/api/me", "/api/sessions"}
	stop := make(chan struct{})
	results := map[string][]probe{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range paths {
		wg.Go(func() {
			got := d.poll(p, token, stop)
			mu.Lock()
			results[p] = got
			mu.Unlock()
		})
	}
	var once sync.Once
	halt := func() { once.Do(func() { close(stop) }); wg.Wait() }
	defer halt() // also when action fails the test
	action()
	// Until both answer something else than 503 (what, the caller checks).
	b := d.browser()
	for _, p := range paths {
		deadline := time.Now().Add(healthyTimeout)
		for {
			a, err := b.try("GET", d.https+p, "", "Authorization", "Bearer "+token)
			if err == nil && a.StatusCode != http.StatusServiceUnavailable {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still fails after the outage: %v %v", p, a.Response, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	halt()
	return results
}

// checkOutage: every request got an answer, and every answer was a 200 or
// a 503 (never a 500, never a proxy error). It reports what clients saw.
func (d *deployment) checkOutage(t *testing.T, what string, results map[string][]probe, want503 bool) {
	t.Helper()
	for _, p := range slices.Sorted(maps.Keys(results)) {
		probes := results[p]
		counts, first, last, errs := outage(probes)
		if len(errs) > 0 {
			t.Errorf("GET %s during %s: %d requests got no answer, e.g. %v", p, what, len(errs), errs[0])
		}
		for status, n := range counts {
			if status != http.StatusOK && status != http.StatusServiceUnavailable {
				t.Errorf("GET %s during %s: %d × %d, want only 200 and 503", p, what, n, status)
			}
		}
		if want503 && counts[http.StatusServiceUnavailable] == 0 {
			t.Errorf("GET %s during %s: no 503 in %d requests", p, what, len(probes))
		}
		var slowest time.Duration
		for _, pr := range probes {
			slowest = max(slowest, pr.took)
		}
		msg := fmt.Sprintf("GET %s during %s: %d requests, %d × 200, %d × 503, slowest answer %.2f s",
			p, what, len(probes), counts[http.StatusOK], counts[http.StatusServiceUnavailable], slowest.Seconds())
		if first >= 0 {
			msg += fmt.Sprintf(", 503s for %.2f s", (last - first).Seconds())
		}
		d.report("%s", msg)
	}
}

// testRedisRestart: `docker compose restart redis`, then a stop and a
// start, then a kill (a crash) and a start, while clients keep asking
// through both services. Every answer is a 200 or a 503 (never a 500 or a
// proxy error); with Redis stopped the answers are 503s. Afterwards every
// session, its data and the profiles are still there: the append-only file
// in the volume (a graceful stop would also save a snapshot; the kill
// shows the append-only file at work).
func (d *deployment) testRedisRestart(t *testing.T) {
	b := d.browser()
	token := b.apiLogin(t, d.https, aliceEmail, alicePassword)
	bearer := []string{"Authorization", "Bearer " + token}
	wantStatus(t, b.do(t, "PUT", d.https+"/api/session/data/cart", `{"items":["ORD-1"]}`,
		append([]string{"Content-Type", "application/json"}, bearer...)...), http.StatusNoContent)
	wantStatus(t, b.do(t, "GET", d.https+"/api/me", "", bearer...), http.StatusOK)
	before := d.userKeys(t)
	if len(before) == 0 {
		t.Fatal("Redis holds no user keys before the restart")
	}
	survived := func(t *testing.T, after string) {
		t.Helper()
		keys := d.userKeys(t)
		for _, k := range before {
			if !slices.Contains(keys, k) {
				t.Errorf("key %s is gone after %s", k, after)
			}
		}
		a := b.do(t, "GET", d.https+"/api/session/data/cart", "", bearer...)
		wantStatus(t, a, http.StatusOK)
		if !strings.Contains(a.body, "ORD-1") {
			t.Errorf("session data after %s: %s", after, a.body)
		}
		a = b.do(t, "GET", d.https+"/api/me", "", bearer...)
		wantStatus(t, a, http.StatusOK)
		if !strings.Contains(a.body, aliceEmail) {
			t.Errorf("/api/me after %s: %.300s", after, a.body)
		}
	}

	var took time.Duration
	results := d.outageAround(t, token, func() {
		begin := time.Now()
		d.p.MustCompose(t, "restart", "redis")
		took = time.Since(begin)
		d.p.WaitHealthy(t, healthyTimeout, "redis")
	})
	d.report("docker compose restart redis: %.1f s", took.Seconds())
	d.checkOutage(t, "docker compose restart redis", results, false)
	survived(t, "the Redis restart")

	// Longer than REDIS_TIMEOUT: the services answer 503 until Redis is
	// back.
	results = d.outageAround(t, token, func() {
		d.p.MustCompose(t, "stop", "redis")
		// Until both services have said so at least once.
		for _, p := range []string{"/api/me", "/api/sessions"} {
			deadline := time.Now().Add(healthyTimeout)
			for {
				a, err := b.try("GET", d.https+p, "", bearer...)
				if err == nil && a.StatusCode == http.StatusServiceUnavailable {
					if !strings.Contains(a.body, `"error"`) {
						t.Errorf("GET %s with Redis stopped: 503 %.200s, want a JSON error", p, a.body)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("GET %s with Redis stopped: still %v %v", p, a.Response, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		d.p.MustCompose(t, "start", "redis")
		d.p.WaitHealthy(t, healthyTimeout, "redis")
	})
	d.checkOutage(t, "docker compose stop redis … start redis", results, true)
	survived(t, "Redis was stopped and started")

	// A crash: SIGKILL, no shutdown save. What was written more than a
	// second before (appendfsync everysec) is in the append-only file.
	token = b.apiLogin(t, d.https, bobEmail, bobPassword)
	bearer = []string{"Authorization", "Bearer " + token}
	wantStatus(t, b.do(t, "PUT", d.https+"/api/session/data/crash", `"written before the crash"`,
		append([]string{"Content-Type", "application/json"}, bearer...)...), http.StatusNoContent)
	before = d.userKeys(t)
	time.Sleep(2 * time.Second) // the append-only file's fsync, once a second
	results = d.outageAround(t, token, func() {
		d.p.MustCompose(t, "kill", "redis")
		d.p.MustCompose(t, "start", "redis")
		d.p.WaitHealthy(t, healthyTimeout, "redis")
	})
	d.checkOutage(t, "docker compose kill redis; start redis", results, false)
	keys := d.userKeys(t)
	for _, k := range before {
		if !slices.Contains(keys, k) {
			t.Errorf("key %s is gone after Redis was killed", k)
		}
	}
	a := b.do(t, "GET", d.https+"/api/session/data/crash", "", bearer...)
	wantStatus(t, a, http.StatusOK)
	if !strings.Contains(a.body, "written before the crash") {
		t.Errorf("session data after Redis was killed: %s", a.body)
	}
}

// monitorFor streams `redis-cli monitor` and returns a channel that is
// closed once a command mentions needle.
func (d *deployment) monitorFor(t *testing.T, needle string) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := d.p.Command(ctx, "exec", "-T", "redis", "redis-cli", "monitor")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	seen := make(chan struct{})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		first := true
		for sc.Scan() {
			if first {
				close(ready) // "OK": monitoring
				first = false
			}
			if strings.Contains(sc.Text(), needle) {
				close(seen)
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case <-ready:
	case <-time.After(healthyTimeout):
		t.Fatal("redis-cli monitor did not start")
	}
	return seen
}

// accountKey is the login throttle's account key (web/throttle.go): the
// login takes from it before it asks the CRM.
func accountKey(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:16])
}

// testGracefulStop: `docker compose stop sessions` while a slow login is
// in flight. The login completes (the service drains on SIGTERM and exits
// 0); requests to the stopped service get nginx's 502 or 503, never a hang;
// the customers service keeps serving; and after `docker compose start
// sessions` the sessions made before are still valid.
func (d *deployment) testGracefulStop(t *testing.T) {
	b := d.browser()
	old := b.apiLogin(t, d.https, aliceEmail, alicePassword)
	bearer := []string{"Authorization", "Bearer " + old}

	inFlight := d.monitorFor(t, accountKey(carolEmail))
	slowID := requestID("slow-login")
	type result struct {
		a    answer
		err  error
		done time.Time
	}
	slow := make(chan result, 1)
	go func() {
		body, _ := json.Marshal(map[string]string{"email": carolEmail, "password": carolPassword})
		a, err := d.browser().try("POST", d.https+"/api/login", string(body), "Content-Type", "application/json", "X-Request-Id", slowID)
		slow <- result{a, err, time.Now()}
	}()
	select {
	case <-inFlight: // the login took from the throttle: it is at the CRM now
	case r := <-slow:
		t.Fatalf("the slow login ended before it reached Redis: %v %v", r.a.Response, r.err)
	case <-time.After(healthyTimeout):
		t.Fatal("the slow login never reached Redis")
	}

	stopBegan := time.Now()
	stopped := make(chan error, 1)
	var stopTook time.Duration
	go func() {
		_, err := d.p.Compose(context.Background(), "stop", "sessions")
		stopTook = time.Since(stopBegan)
		stopped <- err
	}()
	// While it stops: requests to sessions, one after another.
	var during []probe
	for waiting := true; waiting; {
		select {
		case err := <-stopped:
			if err != nil {
				t.Fatal(err)
			}
			waiting = false
		default:
			t0 := time.Now()
			a, err := b.try("GET", d.https+"/api/sessions", "", bearer...)
			pr := probe{at: t0.Sub(stopBegan), took: time.Since(t0), err: err}
			if err == nil {
				pr.status = a.StatusCode
			}
			during = append(during, pr)
			time.Sleep(50 * time.Millisecond)
		}
	}
	r := <-slow
	if r.err != nil {
		t.Fatalf("the login in flight during the stop: %v", r.err)
	}
	wantStatus(t, r.a, http.StatusOK)
	drained := tokenFrom(t, r.a)
	if !r.done.After(stopBegan) {
		t.Error("the slow login ended before the stop began: the test stopped nothing in flight")
	}
	exited, err := time.Parse(time.RFC3339Nano, d.p.Inspect(t, "sessions", "{{.State.FinishedAt}}"))
	if err != nil {
		t.Fatal(err)
	}
	d.report("docker compose stop sessions: %.1f s; the login in flight answered 200 %.1f s after the stop began, the service exited at %.1f s",
		stopTook.Seconds(), r.done.Sub(stopBegan).Seconds(), exited.Sub(stopBegan).Seconds())

	// The service drained and exited by itself (137 would be the SIGKILL
	// after stop_grace_period), and its log says the request was served
	// after the shutdown began.
	if code := d.p.Inspect(t, "sessions", "{{.State.ExitCode}}"); code != "0" {
		t.Errorf("sessions exited with %s, want 0 (drained)", code)
	}
	logs := d.p.Logs(t, "sessions")
	shutdown := strings.Index(logs, "shutting down: draining in-flight requests")
	served := strings.Index(logs, `"`+slowID+`"`)
	if shutdown < 0 || served < shutdown {
		t.Errorf("sessions log: shutdown at %d, the slow login's request line at %d; want the login served after the shutdown began", shutdown, served)
	}
	duringStatus := map[int]int{}
	var duringSlowest time.Duration
	for _, pr := range during {
		duringStatus[pr.status]++
		duringSlowest = max(duringSlowest, pr.took)
		if pr.err != nil {
			t.Errorf("GET /api/sessions %.1f s into the stop: %v", pr.at.Seconds(), pr.err)
		} else if !slices.Contains([]int{http.StatusOK, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}, pr.status) {
			// 504: nginx still had the address of the container that had
			// just exited (its resolver keeps an answer for 1 s) and gave
			// up connecting after proxy_connect_timeout.
			t.Errorf("GET /api/sessions %.1f s into the stop: %d, want 200 (before SIGTERM), 502, 503 or 504", pr.at.Seconds(), pr.status)
		}
	}

	d.report("while sessions stopped, its routes answered %v; slowest %.2f s", duringStatus, duringSlowest.Seconds())

	// Stopped: sessions' routes get nginx's error at once, customers still
	// serves. "At once" from the moment nginx's resolver has forgotten the
	// stopped container's address: it keeps an answer for a second
	// (default.conf: resolver … valid=1s).
	time.Sleep(time.Until(stopBegan.Add(stopTook + 1500*time.Millisecond)))
	var slowest time.Duration
	statuses := map[int]int{}
	for range 5 {
		t0 := time.Now()
		a, err := b.try("GET", d.https+"/api/sessions", "", bearer...)
		took := time.Since(t0)
		slowest = max(slowest, took)
		if err != nil {
			t.Errorf("GET /api/sessions with sessions stopped: %v (after %.1f s)", err, took.Seconds())
			continue
		}
		statuses[a.StatusCode]++
		if a.StatusCode != http.StatusBadGateway && a.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("GET /api/sessions with sessions stopped: %d, want 502 or 503", a.StatusCode)
		}
		wantHSTS(t, a)
	}
	d.report("with sessions stopped, its routes answered %v; slowest %.2f s", statuses, slowest.Seconds())
	a := b.do(t, "GET", d.https+"/api/me", "", bearer...)
	wantStatus(t, a, http.StatusOK)

	// Started again: it serves the sessions made before, the drained
	// login's one included.
	d.p.MustCompose(t, "start", "sessions")
	d.p.WaitHealthy(t, healthyTimeout, "sessions")
	for _, tok := range []string{old, drained} {
		a := b.do(t, "GET", d.https+"/api/sessions", "", "Authorization", "Bearer "+tok)
		wantStatus(t, a, http.StatusOK)
	}
}

// testCookies: every cookie the deployment set in this whole test, on any
// answer, is a __Host- cookie: Secure, Path=/, no Domain.
func (d *deployment) testCookies(t *testing.T) {
	all := d.cookies.seen()
	if len(all) == 0 {
		t.Fatal("no cookie seen at all")
	}
	names := map[string]bool{}
	for _, ck := range all {
		names[ck.Name] = true
		if !strings.HasPrefix(ck.Name, "__Host-") || !ck.Secure || ck.Path != "/" || ck.Domain != "" {
			t.Errorf("cookie %s: Secure=%v Path=%q Domain=%q, want a __Host- name, Secure, Path=/, no Domain", ck.Name, ck.Secure, ck.Path, ck.Domain)
		}
	}
	for _, want := range []string{"__Host-pc_session", "__Host-pc_csrf"} {
		if !names[want] {
			t.Errorf("cookies seen: %v, none named %s", names, want)
		}
	}
}

// testStillHealthy: after everything, every service is still healthy,
// nginx's own check included: it uses the loopback listener, not port 80,
// which only redirects.
func (d *deployment) testStillHealthy(t *testing.T) {
	for svc, state := range d.p.Health(t) {
		if state != "running healthy" {
			t.Errorf("%s is %q, want running healthy", svc, state)
		}
	}
	var health struct {
		Status        string
		FailingStreak int
		Log           []struct{ ExitCode int }
	}
	if err := json.Unmarshal([]byte(d.p.Inspect(t, "nginx", "{{json .State.Health}}")), &health); err != nil {
		t.Fatal(err)
	}
	if health.Status != "healthy" || health.FailingStreak != 0 || len(health.Log) == 0 {
		t.Errorf("nginx health %+v, want healthy with passing checks", health)
	}
	for _, l := range health.Log {
		if l.ExitCode != 0 {
			t.Errorf("an nginx health check failed: %+v", health.Log)
			break
		}
	}
}

// requestID is a fresh X-Request-Id, so that a request can be found in
// the services' logs.
func requestID(what string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "deploytest-" + what + "-" + hex.EncodeToString(b)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}
