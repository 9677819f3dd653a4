// Package openapitest holds the HTTP API to its document, docs/openapi.yaml:
// a test wraps the handler it calls in Handler, and every response of a
// documented route is validated against the document with kin-openapi's
// openapi3filter (status, headers, body), every request too. A mismatch
// fails the test that made the request.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/profilecache/profilecache/docs"
)

// Load parses and validates the served document (docs.OpenAPIJSON).
func Load() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData([]byte(docs.OpenAPIJSON))
	if err != nil {
		return nil, fmt.Errorf("openapitest: load the document: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("openapitest: the document is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("openapitest: the document is not valid: %w", err)
	}
	return doc, nil
}

var (
	loadOnce  sync.Once
	loadedDoc *openapi3.T
	router    routers.Router
	errLoad   error
)

// shared loads the document and its router once per test binary.
func shared() (routers.Router, error) {
	loadOnce.Do(func() {
		if loadedDoc, errLoad = Load(); errLoad != nil {
			return
		}
		router, errLoad = gorillamux.NewRouter(loadedDoc)
	})
	return router, errLoad
}

// Counts of this test binary, for Report.
var (
	validated  atomic.Int64 // responses checked against their operation
	errorShape atomic.Int64 // undocumented method or path under a JSON prefix, or an injected error: checked as the one error shape
	rejected   atomic.Int64 // requests the document rejects, answered with a 4xx as it must be
	skipped    atomic.Int64 // pages and assets
)

// Report says how many responses this test binary validated.
func Report() string {
	return fmt.Sprintf("openapitest: %d responses validated against their operation, %d more checked as the one error shape "+
		"(undocumented method or path under /api/ or /internal/, or an error a fake injected), %d requests the document rejects answered 4xx; %d page/asset responses skipped",
		validated.Load(), errorShape.Load(), rejected.Load(), skipped.Load())
}

// Main runs the tests and, with -v, prints Report.
func Main(m *testing.M) int {
	code := m.Run()
	if testing.Verbose() {
		fmt.Println(Report())
	}
	return code
}

// Options tune Handler.
type Options struct {
	// Credentials checks that a request carries one of the operation's
	// documented credentials (the session cookie, with the CSRF header on
	// unsafe methods; a Bearer token; the webhook secret), by presence.
	// Off for handler tests whose fake authentication uses a test header.
	Credentials bool
	// InjectedErrors is for tests whose fakes return errors that the real
	// dependencies never return on that route (a 409 from GET /api/me):
	// any error status passes if it is the one error shape.
	InjectedErrors bool
	// Lenient is for tests of how the server treats input the document
	// rejects (JSON keys in another case, which encoding/json accepts):
	// such a request may succeed.
	Lenient bool
	// Unconfigured is for tests of a server without an optional route
	// (GET /metrics, which the program always serves): its 404 passes.
	Unconfigured bool
}

// Handler returns h, validating every request it serves and its response
// against the document; a mismatch is an error of tb. Responses stream
// through unchanged: the validation reads a copy after h returns.
func Handler(tb testing.TB, h http.Handler, opt Options) http.Handler {
	tb.Helper()
	r, err := shared()
	if err != nil {
		tb.Fatal(err)
	}
	v := &validator{tb: tb, router: r, opt: opt}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body := &teeBody{ReadCloser: req.Body}
		if req.Body != nil && req.Body != http.NoBody {
			req.Body = body
		}
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, req)
		v.check(req, body, rec)
	})
}

type validator struct {
	tb     testing.TB
	router routers.Router
	opt    Options
}

// check validates one exchange, once h has answered.
func (v *validator) check(req *http.Request, body *teeBody, rec *recorder) {
	if rec.status == 0 {
		rec.status = http.StatusOK // nothing written: net/http sends a 200
	}
	vreq := req.Clone(context.Background())
	vreq.Body = io.NopCloser(bytes.NewReader(body.buf.Bytes()))
	route, params, err := v.router.FindRoute(routeRequest(vreq))
	switch {
	case err != nil && !jsonPath(req.URL.Path):
		skipped.Add(1) // a page or an asset
	case err != nil:
		// Under a JSON prefix, an undocumented path or method (404, 405,
		// the key-less /api/session/data/) is still an error in the one
		// shape.
		v.checkErrorShape(req, rec, "not a documented route")
	default:
		in := &openapi3filter.RequestValidationInput{
			Request:    vreq,
			PathParams: params,
			Route:      route,
			Options: &openapi3filter.Options{
				AuthenticationFunc: v.authenticate,
				ExcludeRequestBody: !body.eof,
				MultiError:         true,
			},
		}
		v.checkRequest(in, rec.status)
		v.checkResponse(in, rec)
	}
}

// checkRequest: a request the document rejects must be answered with an
// error.
func (v *validator) checkRequest(in *openapi3filter.RequestValidationInput, status int) {
	err := openapi3filter.ValidateRequest(context.Background(), in)
	switch {
	case err == nil || v.opt.Lenient && status < 400:
	case status < 400:
		v.tb.Errorf("openapitest: %s %s: the document rejects this request, yet it got %d:\n%v", in.Request.Method, in.Request.URL.RequestURI(), status, err)
	default:
		rejected.Add(1)
	}
}

// checkResponse validates the answer against its operation.
func (v *validator) checkResponse(in *openapi3filter.RequestValidationInput, rec *recorder) {
	req, status := in.Request, rec.status
	switch {
	case v.opt.Unconfigured && status == http.StatusNotFound:
		skipped.Add(1)
		return
	case v.opt.InjectedErrors && status >= 400 && in.Route.Operation.Responses.Status(status) == nil:
		v.checkErrorShape(req, rec, "an injected error")
		return
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 rec.sent(),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes(rec.body.Bytes())
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		v.tb.Errorf("openapitest: %s %s: the %d response does not match the document:\n%v\nbody: %.500q", req.Method, req.URL.RequestURI(), status, err, rec.body.Bytes())
	}
	validated.Add(1)
}

// checkErrorShape fails the test unless the answer is an error in the one
// shape, {"error": "<message>"}.
func (v *validator) checkErrorShape(req *http.Request, rec *recorder, what string) {
	if msg := errorShapeProblem(rec); msg != "" {
		v.tb.Errorf("openapitest: %s %s: %d, %s, and %s; body %q", req.Method, req.URL.RequestURI(), rec.status, what, msg, rec.body.Bytes())
	}
	errorShape.Add(1)
}

// routeRequest is req as the router matches it: forward auth answers every
// method of /auth and every path under /auth/ (Envoy's ext_authz keeps the
// client's method and appends its path) as it answers GET /auth.
func routeRequest(req *http.Request) *http.Request {
	if req.URL.Path != "/auth" && !strings.HasPrefix(req.URL.Path, "/auth/") {
		return req
	}
	r := req.Clone(req.Context())
	r.Method = http.MethodGet
	r.URL.Path, r.URL.RawPath = "/auth", ""
	return r
}

// jsonPath reports the paths whose every answer is JSON (web.wantsJSON).
func jsonPath(p string) bool {
	return p == "/api" || strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/internal/")
}

// errorShapeProblem says what is wrong with an answer that must be an
// error in the one shape, {"error": "<message>"}; "" when nothing.
func errorShapeProblem(rec *recorder) string {
	if rec.status < 400 {
		return "not an error status"
	}
	if ct := rec.sent().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Sprintf("Content-Type %q is not JSON", ct)
	}
	var e map[string]any
	if err := json.Unmarshal(rec.body.Bytes(), &e); err != nil {
		return "the body is not JSON"
	}
	if msg, ok := e["error"].(string); !ok || msg == "" || len(e) != 1 {
		return `the body is not {"error": "<message>"}`
	}
	return ""
}

var errNoCredential = errors.New("the request does not carry this credential")

// authenticate checks that the request carries the scheme's credential
// (when Options.Credentials), not whether it is good: the server answers a
// bad one with 401, which the document allows.
func (v *validator) authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if !v.opt.Credentials {
		return nil
	}
	r, s := in.RequestValidationInput.Request, in.SecurityScheme
	ok := false
	switch {
	case s.Type == "http" && strings.EqualFold(s.Scheme, "bearer"):
		h := r.Header.Get("Authorization")
		ok = len(h) > 7 && strings.EqualFold(h[:7], "bearer ")
	case s.Type == "apiKey" && s.In == "cookie":
		_, err := r.Cookie(s.Name)
		_, errHost := r.Cookie("__Host-" + s.Name)
		ok = err == nil || errHost == nil
	case s.Type == "apiKey" && s.In == "header":
		ok = r.Header.Get(s.Name) != ""
	}
	if !ok {
		return errNoCredential
	}
	return nil
}

// teeBody keeps a copy of what the handler read of the request body.
type teeBody struct {
	io.ReadCloser
	buf bytes.Buffer
	eof bool
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	t.buf.Write(p[:n])
	if errors.Is(err, io.EOF) {
		t.eof = true
	}
	return n, err
}

// recorder passes the response through and keeps its status, the header
// as it was sent and a copy of its body.
type recorder struct {
	http.ResponseWriter
	status int
	header http.Header
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
		r.header = r.ResponseWriter.Header().Clone()
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// sent is the header the client got (the current one if nothing was sent).
func (r *recorder) sent() http.Header {
	if r.header == nil {
		return r.ResponseWriter.Header().Clone()
	}
	return r.header
}

// Unwrap lets http.ResponseController reach the real writer (Flush,
// deadlines).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush passes a flush on, for handlers that check for http.Flusher.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
