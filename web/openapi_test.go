package web_test

import (
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/profilecache/profilecache/docs"
	"github.com/profilecache/profilecache/internal/openapitest"
	"github.com/profilecache/profilecache/web"
)

// TestMain prints, with -v, how many responses the tests validated against
// docs/openapi.yaml.
func TestMain(m *testing.M) { os.Exit(openapitest.Main(m)) }

// undocumented is every echo route that docs/openapi.yaml leaves out, and
// why. It must be complete: a new route that is neither documented nor
// listed here fails TestEveryRouteIsDocumented. "*" stands for any method.
var undocumented = map[string]string{
	// HTML pages: for browsers, answers are pages or redirects, not JSON.
	"GET /":                     "page: redirects to /profile",
	"GET /login":                "page: the login form",
	"POST /login":               "page: the form login (303 with the session cookie)",
	"POST /logout":              "page: logout form (303 to /login)",
	"POST /logout-all":          "page: logout-all form",
	"GET /profile":              "page: the profile",
	"GET /sessions":             "page: the session list",
	"POST /sessions/:id/revoke": "page: a session list's sign-out button",
	"GET /static/*":             "asset: the stylesheet",
	"* /api/session/data/":      "the key-less data path: always 400 \"the key must not be empty\", as /api/session/data/{key} documents",
	"* /auth":                   "forward auth under Envoy: every method of /auth answers as the documented GET /auth",
	"* /auth/*":                 "forward auth under Envoy (ext_authz appends the path): answers as GET /auth",
}

// echoParam turns echo's :name into OpenAPI's {name}.
var echoParam = regexp.MustCompile(`:([A-Za-z_][A-Za-z0-9_]*)`)

// TestEveryRouteIsDocumented: every route registered with echo (the
// optional ones, metrics and the webhook, switched on) is in
// docs/openapi.yaml or in undocumented, every documented operation is
// registered, and every entry of undocumented still names a route.
func TestEveryRouteIsDocumented(t *testing.T) {
	doc, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	env := newTestEnv(t, func(c *web.Config) {
		c.Metrics = http.NotFoundHandler()
		c.Changes = &fakeChanges{}
		c.WebhookSecret = webhookSecret
	})
	registered, used := map[string]bool{}, map[string]bool{}
	for _, r := range env.server.Handler().Routes() {
		key := r.Method + " " + echoParam.ReplaceAllString(r.Path, "{$1}")
		registered[key] = true
		switch {
		case documented[key]:
		case undocumented[r.Method+" "+r.Path] != "":
			used[r.Method+" "+r.Path] = true
		case undocumented["* "+r.Path] != "":
			used["* "+r.Path] = true
		default:
			t.Errorf("%s %s is registered but neither in docs/openapi.yaml nor in undocumented", r.Method, r.Path)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(documented)) {
		if !registered[key] {
			t.Errorf("docs/openapi.yaml documents %s, which is not registered", key)
		}
	}
	for key := range undocumented {
		if !used[key] {
			t.Errorf("undocumented lists %q, which names no undocumented route", key)
		}
	}
	t.Logf("%d operations documented, %d routes registered, %d entries in undocumented", len(documented), len(registered), len(undocumented))
}

// TestOpenAPIDocumentServed: GET /api/openapi.json needs no session, is the
// embedded document, and is cacheable: an ETag that If-None-Match turns
// into a 304.
func TestOpenAPIDocumentServed(t *testing.T) {
	env := newTestEnv(t)
	rec := env.do(t, request{path: "/api/openapi.json"})
	if rec.Code != http.StatusOK || rec.Body.String() != docs.OpenAPIJSON {
		t.Fatalf("status %d, body of %d bytes; want 200 and the %d bytes of docs.OpenAPIJSON", rec.Code, rec.Body.Len(), len(docs.OpenAPIJSON))
	}
	etag := rec.Header().Get("ETag")
	if etag == "" || !strings.HasPrefix(rec.Header().Get("Cache-Control"), "public, max-age=") {
		t.Fatalf("ETag %q, Cache-Control %q: want an ETag and a public max-age", etag, rec.Header().Get("Cache-Control"))
	}
	for _, tc := range []struct {
		ifNoneMatch string
		want        int
	}{
		{etag, http.StatusNotModified},
		{`"other", W/` + etag, http.StatusNotModified},
		{"*", http.StatusNotModified},
		{`"other"`, http.StatusOK},
	} {
		rec := env.do(t, request{path: "/api/openapi.json", header: map[string]string{"If-None-Match": tc.ifNoneMatch}})
		if rec.Code != tc.want {
			t.Errorf("If-None-Match %s: status %d, want %d", tc.ifNoneMatch, rec.Code, tc.want)
		}
	}
}
