package main

import (
	"bytes"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// These tests check docker-compose.yml, the Dockerfile and deploy/ against
// each other and against the code, without Docker and in a second:
// everything `docker compose up` would trip over late, caught early.
// deploy/deploy_test.go then builds and runs the deployment for real.

const (
	repoRoot    = "../.."
	composePath = repoRoot + "/docker-compose.yml"
)

// composeFile is the part of the Compose specification that the file
// uses. Decoding with KnownFields rejects any other key, so a typo
// ("enviroment") fails here instead of being silently ignored by compose.
type composeFile struct {
	Services   map[string]composeService  `yaml:"services"`
	Networks   map[string]*composeNetwork `yaml:"networks"`
	Volumes    map[string]*struct{}       `yaml:"volumes"`
	Extensions map[string]any             `yaml:",inline"` // x-* anchors
}

type composeService struct {
	Image           string            `yaml:"image"`
	Build           *composeBuild     `yaml:"build"`
	Command         []string          `yaml:"command"`
	Environment     composeEnv        `yaml:"environment"`
	DependsOn       composeDependsOn  `yaml:"depends_on"`
	Ports           []string          `yaml:"ports"`
	Volumes         []string          `yaml:"volumes"`
	Healthcheck     *composeHealth    `yaml:"healthcheck"`
	Networks        composeSvcNetwork `yaml:"networks"`
	Restart         string            `yaml:"restart"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

// UnmarshalYAML accepts both `build: .` and `build: {context: .}`.
func (b *composeBuild) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	type plain composeBuild
	return n.Decode((*plain)(b))
}

type composeHealth struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	StartPeriod string   `yaml:"start_period"`
	Retries     int      `yaml:"retries"`
}

type composeNetwork struct {
	IPAM struct {
		Config []struct {
			Subnet string `yaml:"subnet"`
		} `yaml:"config"`
	} `yaml:"ipam"`
}

// composeEnv accepts the map form and the list form ("K=V").
type composeEnv map[string]string

func (e *composeEnv) UnmarshalYAML(n *yaml.Node) error {
	*e = composeEnv{}
	if n.Kind == yaml.SequenceNode {
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		for _, kv := range list {
			k, v, _ := strings.Cut(kv, "=")
			(*e)[k] = v
		}
		return nil
	}
	return n.Decode((*map[string]string)(e))
}

// composeDependsOn accepts a list of names or a map name -> {condition}.
type composeDependsOn map[string]string

func (d *composeDependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = composeDependsOn{}
	if n.Kind == yaml.SequenceNode {
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		for _, name := range list {
			(*d)[name] = "service_started"
		}
		return nil
	}
	var m map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	for name, v := range m {
		(*d)[name] = v.Condition
	}
	return nil
}

// composeSvcNetwork accepts a list of names or a map name -> {ipv4_address}.
type composeSvcNetwork map[string]string

func (s *composeSvcNetwork) UnmarshalYAML(n *yaml.Node) error {
	*s = composeSvcNetwork{}
	if n.Kind == yaml.SequenceNode {
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		for _, name := range list {
			(*s)[name] = ""
		}
		return nil
	}
	var m map[string]*struct {
		IPv4 string `yaml:"ipv4_address"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	for name, v := range m {
		if v != nil {
			(*s)[name] = v.IPv4
		} else {
			(*s)[name] = ""
		}
	}
	return nil
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	data, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f composeFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", composePath, err)
	}
	for k := range f.Extensions {
		if !strings.HasPrefix(k, "x-") {
			t.Errorf("%s: unknown top-level key %q (extensions must start with x-)", composePath, k)
		}
	}
	return f
}

// configEnvNames are the environment variables loadConfig reads.
func configEnvNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	if _, err := loadConfig(nil, func(k string) string { names[k] = true; return "" }); err != nil {
		t.Fatal(err)
	}
	return names
}

// ourServices are the services built from this repository's Dockerfile.
func ourServices(f composeFile) []string {
	var names []string
	for name, s := range f.Services {
		if s.Build != nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// interpolate resolves compose's ${VAR}, ${VAR:-default} and
// ${VAR:?message} the way `docker compose up` would with the environment
// docs/deploy.md tells users to set.
var interpolation = regexp.MustCompile(`\$\{([A-Z0-9_]+)(?::?([-?])([^}]*))?\}`)

func interpolate(v string, shell map[string]string) (string, error) {
	var err error
	out := interpolation.ReplaceAllStringFunc(v, func(m string) string {
		p := interpolation.FindStringSubmatch(m)
		name, op, arg := p[1], p[2], p[3]
		if val, ok := shell[name]; ok && val != "" {
			return val
		}
		switch op {
		case "-":
			return arg
		case "?":
			err = fmt.Errorf("${%s} is required: %s", name, arg)
		}
		return ""
	})
	return out, err
}

func TestComposeServices(t *testing.T) {
	f := loadCompose(t)
	for _, want := range []string{"redis", "sessions", "customers", "nginx"} {
		if _, ok := f.Services[want]; !ok {
			t.Errorf("no %q service", want)
		}
	}
	for name, s := range f.Services {
		t.Run(name, func(t *testing.T) {
			switch {
			case s.Build == nil && s.Image == "":
				t.Error("neither build nor image")
			case s.Build == nil:
				// A pinned tag, so that a rebuild months later runs the same thing.
				if _, tag, ok := strings.Cut(s.Image, ":"); !ok || tag == "" || tag == "latest" {
					t.Errorf("image %q has no pinned tag", s.Image)
				}
			default:
				ctx := filepath.Join(repoRoot, s.Build.Context)
				if fi, err := os.Stat(ctx); err != nil || !fi.IsDir() {
					t.Errorf("build context %q: not a directory (%v)", s.Build.Context, err)
				}
				df := cmpOr(s.Build.Dockerfile, "Dockerfile")
				if _, err := os.Stat(filepath.Join(ctx, df)); err != nil {
					t.Errorf("build: %v", err)
				}
			}
			for _, v := range s.Volumes {
				src, _, ok := strings.Cut(v, ":")
				if !ok {
					t.Errorf("volume %q: want source:target", v)
					continue
				}
				if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
					// A file, or a directory such as deploy/tls/ (its
					// contents are the operator's).
					if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
						t.Errorf("mounted path %q does not exist in the repository (%v)", src, err)
					}
				} else if _, ok := f.Volumes[src]; !ok {
					t.Errorf("named volume %q is not declared under volumes:", src)
				}
			}
			for dep, cond := range s.DependsOn {
				target, ok := f.Services[dep]
				if !ok {
					t.Errorf("depends_on %q: no such service", dep)
					continue
				}
				if cond == "service_healthy" && (target.Healthcheck == nil || len(target.Healthcheck.Test) == 0) {
					t.Errorf("depends_on %q: service_healthy, but %q has no healthcheck", dep, dep)
				}
			}
			if s.Healthcheck == nil || len(s.Healthcheck.Test) < 2 || s.Healthcheck.Test[0] != "CMD" {
				t.Errorf("healthcheck = %+v, want an exec-form test [\"CMD\", ...]", s.Healthcheck)
			}
			for _, p := range s.Ports {
				if _, err := containerPort(p); err != nil {
					t.Error(err)
				}
			}
			for net := range s.Networks {
				if _, ok := f.Networks[net]; !ok {
					t.Errorf("network %q is not declared under networks:", net)
				}
			}
		})
	}
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// containerPort parses "80", "8080:80", "127.0.0.1:8080:80" or with /tcp.
func containerPort(spec string) (int, error) {
	spec, _, _ = strings.Cut(spec, "/")
	parts := strings.Split(spec, ":")
	p, err := strconv.Atoi(parts[len(parts)-1])
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %q: bad container port", spec)
	}
	return p, nil
}

// TestComposeAppEnvironment: every variable set for the profilecache
// services is one the program reads, and with the variables docs/deploy.md
// tells users to export, the program accepts the configuration.
func TestComposeAppEnvironment(t *testing.T) {
	f := loadCompose(t)
	known := configEnvNames(t)
	shell := map[string]string{"SESSION_SECRET": strings.Repeat("x", 48)}
	ours := ourServices(f)
	if len(ours) < 2 {
		t.Fatalf("services built from the Dockerfile: %v, want at least two (sessions, customers)", ours)
	}
	first := f.Services[ours[0]].Environment
	for _, name := range ours {
		s := f.Services[name]
		t.Run(name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range s.Environment {
				if !known[k] {
					t.Errorf("environment %s: profilecache does not read it (it reads %v)", k, slices.Sorted(maps.Keys(known)))
				}
				val, err := interpolate(v, shell)
				if err != nil {
					t.Errorf("environment %s: %v", k, err)
				}
				env[k] = val
			}
			// Unset in the shell, the secret must stop compose, not start
			// instances with different random keys.
			if _, err := interpolate(s.Environment["SESSION_SECRET"], nil); err == nil {
				t.Error("SESSION_SECRET has a default: every instance must get the operator's one secret")
			}
			for _, k := range []string{"REDIS_URL", "SESSION_SECRET", "ADDR", "TRUSTED_PROXIES"} {
				if env[k] == "" {
					t.Errorf("environment %s is not set", k)
				}
			}
			if _, err := loadConfig(nil, func(k string) string { return env[k] }); err != nil {
				t.Errorf("profilecache rejects this environment: %v", err)
			}
			u, err := url.Parse(env["REDIS_URL"])
			if err != nil {
				t.Fatalf("REDIS_URL: %v", err)
			}
			if _, ok := f.Services[u.Hostname()]; !ok {
				t.Errorf("REDIS_URL host %q is not a service", u.Hostname())
			}
			if _, ok := s.DependsOn[u.Hostname()]; !ok {
				t.Errorf("does not depend on %q, its Redis", u.Hostname())
			}
			// One Redis, one secret: the services share sessions.
			for _, k := range []string{"REDIS_URL", "SESSION_SECRET"} {
				if s.Environment[k] != first[k] {
					t.Errorf("%s = %q, but %s has %q: the services must share it", k, s.Environment[k], ours[0], first[k])
				}
			}
			if want := []string{"CMD", "/profilecache", healthcheckFlag}; s.Healthcheck == nil || !slices.Equal(s.Healthcheck.Test, want) {
				t.Errorf("healthcheck test = %v, want %v (distroless has no shell or curl)", s.Healthcheck, want)
			}
			if len(s.Ports) > 0 {
				t.Errorf("publishes %v: only nginx should be reachable from outside", s.Ports)
			}
		})
	}
}

// TestComposeNginx checks the proxy against the services it fronts: the
// mounted configuration's upstreams are compose services on the port they
// listen on, nginx listens where compose publishes, and the services trust
// nginx's address and nothing wider than needed.
func TestComposeNginx(t *testing.T) {
	f := loadCompose(t)
	ngx, ok := f.Services["nginx"]
	if !ok {
		t.Fatal("no nginx service")
	}
	var confSrc string
	for _, v := range ngx.Volumes {
		src, rest, _ := strings.Cut(v, ":")
		if dst, _, _ := strings.Cut(rest, ":"); dst == "/etc/nginx/conf.d/default.conf" {
			confSrc = src
		}
	}
	if filepath.Clean(confSrc) != "deploy/nginx/default.conf" {
		t.Fatalf("nginx mounts %q as its default.conf, want ./deploy/nginx/default.conf (the file nginx_test.go tests)", confSrc)
	}
	conf, err := os.ReadFile(filepath.Join(repoRoot, confSrc))
	if err != nil {
		t.Fatal(err)
	}

	// The services' addresses: the "default" lines of the maps that
	// proxy_pass takes them from.
	upstreams := regexp.MustCompile(`(?m)^\s*default\s+([a-z0-9_-]+):(\d+)\s*;`).FindAllStringSubmatch(string(conf), -1)
	if len(upstreams) < 2 {
		t.Fatalf("default.conf: %d upstream servers, want one per service", len(upstreams))
	}
	for _, m := range upstreams {
		name, port := m[1], m[2]
		s, ok := f.Services[name]
		if !ok {
			t.Errorf("default.conf upstream %s:%s: no such compose service", name, port)
			continue
		}
		_, listen, _ := net.SplitHostPort(s.Environment["ADDR"])
		if listen != port {
			t.Errorf("default.conf sends %s to port %s, but it listens on ADDR=%q", name, port, s.Environment["ADDR"])
		}
		if _, ok := ngx.DependsOn[name]; !ok {
			t.Errorf("nginx does not depend on %s: it would start before the service answers", name)
		}
	}

	// Every port nginx listens on for everyone is published; what it
	// listens on at loopback (the health check's) is not.
	published := map[string]bool{}
	for _, p := range ngx.Ports {
		if cp, err := containerPort(p); err == nil {
			published[strconv.Itoa(cp)] = true
		}
	}
	listens := regexp.MustCompile(`(?m)^\s*listen\s+([^\s;]+)[^;]*;`).FindAllStringSubmatch(string(conf), -1)
	if len(listens) == 0 {
		t.Fatal("default.conf: no listen line")
	}
	for _, l := range listens {
		if host, port, err := net.SplitHostPort(l[1]); err == nil {
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				t.Errorf("default.conf listens on %s: want a bare port (public) or loopback", l[1])
			} else if published[port] {
				t.Errorf("nginx publishes %s, which default.conf keeps on loopback", port)
			}
			continue
		}
		if !published[l[1]] {
			t.Errorf("nginx listens on %s but publishes %v", l[1], ngx.Ports)
		}
	}

	// The services trust exactly nginx's fixed address.
	var nginxIP net.IP
	for netName, ip := range ngx.Networks {
		if ip == "" {
			continue
		}
		nginxIP = net.ParseIP(ip)
		n := f.Networks[netName]
		if n == nil || len(n.IPAM.Config) == 0 {
			t.Errorf("nginx has a fixed address on %q, which declares no subnet", netName)
			continue
		}
		_, subnet, err := net.ParseCIDR(n.IPAM.Config[0].Subnet)
		if err != nil || !subnet.Contains(nginxIP) {
			t.Errorf("nginx address %s is not in %q's subnet %q", ip, netName, n.IPAM.Config[0].Subnet)
		}
	}
	if nginxIP == nil {
		t.Fatal("nginx has no fixed ipv4_address for the services to trust")
	}
	for _, name := range ourServices(f) {
		proxies, err := parseTrustedProxies(f.Services[name].Environment["TRUSTED_PROXIES"])
		if err != nil {
			t.Errorf("%s: TRUSTED_PROXIES: %v", name, err)
			continue
		}
		if !slices.ContainsFunc(proxies, func(n *net.IPNet) bool { return n.Contains(nginxIP) }) {
			t.Errorf("%s: TRUSTED_PROXIES %v does not include nginx at %s", name, proxies, nginxIP)
		}
		for _, n := range proxies {
			if ones, bits := n.Mask.Size(); ones != bits {
				t.Errorf("%s: TRUSTED_PROXIES trusts the range %s: a compromised neighbour could forge client addresses", name, n)
			}
		}
	}
}

// TestComposeNginxTLS checks the TLS deployment that nginx_test.go runs:
// HTTPS on 443 with the certificate from a directory compose mounts, port
// 80 only redirecting, HSTS, the forwarded scheme, the paths kept off the
// public side, and a health check that does not go through the redirect.
func TestComposeNginxTLS(t *testing.T) {
	f := loadCompose(t)
	ngx := f.Services["nginx"]
	conf, err := os.ReadFile(filepath.Join(repoRoot, "deploy/nginx/default.conf"))
	if err != nil {
		t.Fatal(err)
	}
	servers := nginxBlocks(string(conf), "server")
	var tlsSrv, plainSrv, healthSrv string
	for _, b := range servers {
		switch {
		case regexp.MustCompile(`(?m)^\s*listen\s+443\s+ssl\b`).MatchString(b):
			tlsSrv = b
		case regexp.MustCompile(`(?m)^\s*listen\s+80\s*;`).MatchString(b):
			plainSrv = b
		case regexp.MustCompile(`(?m)^\s*listen\s+127\.0\.0\.1:\d+\s*;`).MatchString(b):
			healthSrv = b
		}
	}
	if tlsSrv == "" || plainSrv == "" || healthSrv == "" {
		t.Fatalf("default.conf: want a server on 443 ssl, one on 80 and one on loopback; found %d servers", len(servers))
	}
	for _, port := range []int{443, 80} {
		if !slices.ContainsFunc(ngx.Ports, func(p string) bool { cp, _ := containerPort(p); return cp == port }) {
			t.Errorf("nginx does not publish %d: %v", port, ngx.Ports)
		}
	}

	// Port 80 redirects and proxies nothing.
	if !regexp.MustCompile(`return\s+301\s+https://\$host\$request_uri;`).MatchString(plainSrv) || strings.Contains(plainSrv, "proxy_pass") {
		t.Errorf("the port 80 server must only `return 301 https://$host$request_uri;`:\n%s", plainSrv)
	}

	// The certificate and key come from a repository directory mounted
	// read-only, as the file names in it.
	mounts := map[string]string{} // container dir -> "src:dst:mode"
	for _, v := range ngx.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			mounts[parts[1]] = v
		}
	}
	for _, directive := range []string{"ssl_certificate", "ssl_certificate_key"} {
		m := regexp.MustCompile(`(?m)^\s*` + directive + `\s+(\S+);`).FindStringSubmatch(tlsSrv)
		if m == nil {
			t.Errorf("the TLS server has no %s", directive)
			continue
		}
		dir := filepath.Dir(m[1])
		v, ok := mounts[dir]
		if !ok {
			t.Errorf("%s %s: compose mounts nothing on %s (mounts %v)", directive, m[1], dir, ngx.Volumes)
			continue
		}
		if !strings.HasSuffix(v, ":ro") {
			t.Errorf("volume %q: mount the certificate directory read-only", v)
		}
		src := filepath.Join(repoRoot, strings.SplitN(v, ":", 2)[0])
		if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
			t.Errorf("volume %q: %s is not a directory of the repository (%v)", v, src, err)
		}
	}

	// HSTS for at least a year, on every answer.
	hsts := regexp.MustCompile(`(?m)^\s*add_header\s+Strict-Transport-Security\s+"max-age=(\d+)(;[^"]*)?"\s+always;`).FindStringSubmatch(tlsSrv)
	if hsts == nil {
		t.Error(`the TLS server does not send add_header Strict-Transport-Security "max-age=…" always`)
	} else if age, _ := strconv.Atoi(hsts[1]); age < 365*24*3600 {
		t.Errorf("HSTS max-age %d: want at least a year", age)
	}
	for _, loc := range nginxBlocks(tlsSrv, "location") {
		if strings.Contains(loc, "add_header") {
			t.Errorf("a location sets add_header, so it loses the server's HSTS header:\n%s", loc)
		}
	}
	if !regexp.MustCompile(`(?m)^\s*proxy_set_header\s+X-Forwarded-Proto\s+(https|\$scheme)\s*;`).MatchString(tlsSrv) {
		t.Error("the TLS server does not tell the services the client used https (X-Forwarded-Proto)")
	}
	for _, hidden := range []string{`=\s*/metrics`, `=\s*/readyz`, `/internal/`} {
		if !regexp.MustCompile(`location\s+` + hidden + `\s*\{\s*return\s+404;\s*\}`).MatchString(tlsSrv) {
			t.Errorf("the TLS server does not answer %s with 404", strings.ReplaceAll(hidden, `\s*`, " "))
		}
	}

	// The health check reaches the loopback listener over plain HTTP.
	port := regexp.MustCompile(`listen\s+127\.0\.0\.1:(\d+)`).FindStringSubmatch(healthSrv)[1]
	if ngx.Healthcheck == nil || !slices.Contains(ngx.Healthcheck.Test, "http://127.0.0.1:"+port+"/healthz") {
		t.Errorf("nginx healthcheck %v: want it to GET http://127.0.0.1:%s/healthz (the loopback listener)", ngx.Healthcheck, port)
	}
}

// nginxBlocks returns the bodies of the blocks named name ("server",
// "location ...") at the top level of conf, comments removed.
func nginxBlocks(conf, name string) []string {
	var clean strings.Builder
	for line := range strings.SplitSeq(conf, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		clean.WriteString(line + "\n")
	}
	src := clean.String()
	var out []string
	start := regexp.MustCompile(`(?m)(^|[;{}\s])` + name + `\b[^{;]*\{`)
	for pos := 0; pos < len(src); {
		loc := start.FindStringIndex(src[pos:])
		if loc == nil {
			break
		}
		open := pos + loc[1]
		depth, end := 1, open
		for end < len(src) && depth > 0 {
			switch src[end] {
			case '{':
				depth++
			case '}':
				depth--
			}
			end++
		}
		out = append(out, src[open:end-1])
		pos = end
	}
	return out
}

func TestComposeRedisPersists(t *testing.T) {
	f := loadCompose(t)
	r, ok := f.Services["redis"]
	if !ok {
		t.Fatal("no redis service")
	}
	if i := slices.Index(r.Command, "--appendonly"); i < 0 || i+1 >= len(r.Command) || r.Command[i+1] != "yes" {
		t.Errorf("redis command %v: want --appendonly yes", r.Command)
	}
	data := false
	for _, v := range r.Volumes {
		if _, rest, _ := strings.Cut(v, ":"); strings.HasPrefix(rest, "/data") {
			data = true
		}
	}
	if !data {
		t.Errorf("redis volumes %v: want a volume on /data, where the append-only file lives", r.Volumes)
	}
}

// TestDockerfile checks what the image promises: a Go new enough for
// go.mod, a static binary, a non-root user, the port the app listens on,
// and a health check the binary implements.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}

	goLine := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindStringSubmatch(string(gomod))
	from := regexp.MustCompile(`(?m)^FROM golang:(\d+)\.(\d+)`).FindStringSubmatch(df)
	if goLine == nil || from == nil {
		t.Fatalf("go.mod go line %v, Dockerfile FROM golang %v: want both", goLine, from)
	}
	if version(from[1], from[2]) < version(goLine[1], goLine[2]) {
		t.Errorf("Dockerfile builds with Go %s.%s, go.mod needs %s.%s", from[1], from[2], goLine[1], goLine[2])
	}
	// A "# syntax=" line makes BuildKit pull a frontend image: the build
	// fails without a registry, and the built-in frontend knows RUN --mount.
	if regexp.MustCompile(`(?m)^#\s*syntax\s*=`).MatchString(df) {
		t.Error("the Dockerfile has a # syntax= line: it pulls a frontend image; the built-in one suffices")
	}
	if !strings.Contains(df, "CGO_ENABLED=0") {
		t.Error("the build is not static (CGO_ENABLED=0): distroless/static has no libc")
	}

	stages := strings.Split(df, "\nFROM ")
	final := stages[len(stages)-1]
	user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindStringSubmatch(final)
	if user == nil || strings.HasPrefix(user[1], "root") || strings.HasPrefix(user[1], "0") {
		t.Errorf("final stage USER = %v, want a non-root user", user)
	}
	addr := regexp.MustCompile(`(?m)^ENV ADDR=(\S+)`).FindStringSubmatch(final)
	expose := regexp.MustCompile(`(?m)^EXPOSE (\d+)`).FindStringSubmatch(final)
	if addr == nil || expose == nil {
		t.Fatalf("final stage: ENV ADDR %v, EXPOSE %v: want both", addr, expose)
	}
	if _, port, _ := net.SplitHostPort(addr[1]); port != expose[1] {
		t.Errorf("EXPOSE %s, but ADDR=%s", expose[1], addr[1])
	}
	if !strings.Contains(final, `CMD ["/profilecache", "`+healthcheckFlag+`"]`) ||
		!strings.Contains(final, `ENTRYPOINT ["/profilecache"]`) {
		t.Errorf("final stage: want ENTRYPOINT [\"/profilecache\"] and a HEALTHCHECK running it with %s", healthcheckFlag)
	}
}

func version(major, minor string) int {
	a, _ := strconv.Atoi(major)
	b, _ := strconv.Atoi(minor)
	return a*1000 + b
}
