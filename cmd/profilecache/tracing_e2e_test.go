package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/profilecache/profilecache/internal/crmtest"
	"github.com/profilecache/profilecache/internal/otlptest"
	"github.com/profilecache/profilecache/profile"
)

// startTraced runs the service with tracing on, exporting over OTLP/HTTP
// to a receiver of its own, configured as an operator would: by the
// standard variables in the process environment (the SDK reads them
// there, so this test cannot run in parallel).
func startTraced(t *testing.T, env map[string]string) (*e2e, *otlptest.Receiver) {
	t.Helper()
	rcv := otlptest.New(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "profilecache-e2e")
	return startWithLogger(t, env), rcv
}

// flush exports every ended span to the receiver now.
func (e *e2e) flush() {
	e.t.Helper()
	if err := e.app.flushTraces(context.Background()); err != nil {
		e.t.Fatalf("flush traces: %v", err)
	}
}

// newTraceparent is a caller's sampled W3C traceparent, and its ids.
func newTraceparent() (header, traceID, spanID string) {
	var b [24]byte
	_, _ = rand.Read(b[:])
	traceID, spanID = hex.EncodeToString(b[:16]), hex.EncodeToString(b[16:])
	return "00-" + traceID + "-" + spanID + "-01", traceID, spanID
}

func spanNamed(spans []otlptest.Span, name string) (otlptest.Span, bool) {
	for _, s := range spans {
		if s.Name == name {
			return s, true
		}
	}
	return otlptest.Span{}, false
}

// descends reports whether s is ancestor's descendant within spans.
func descends(spans []otlptest.Span, s otlptest.Span, ancestor string) bool {
	byID := map[string]otlptest.Span{}
	for _, sp := range spans {
		byID[sp.SpanID] = sp
	}
	for i := 0; i < len(spans) && s.ParentSpanID != ""; i++ {
		if s.ParentSpanID == ancestor {
			return true
		}
		s = byID[s.ParentSpanID]
	}
	return false
}

// One request's trace, as a real OTLP receiver gets it: carol's orders,
// missed in the cache (the CRM's webhook dropped them), with the caller's
// traceparent. The server span continues the caller's trace; the Redis
// round trips are its children; the CRM calls are in it, and the CRM got
// their traceparent; the request's log line names the span.
func TestE2ETraceOfOneRequest(t *testing.T) {
	crm := crmtest.New(t)
	carol := crm.AddDemo(t, "carol@example.com", "carol-secret")
	e, rcv := startTraced(t, map[string]string{"BACKEND_URL": crm.URL, "WEBHOOK_SECRET": e2eWebhookSecret})
	bearer := e.apiLogin("carol@example.com", "carol-secret")
	resp, _ := e.do(&http.Client{}, "POST", "/internal/profile-changed", strings.NewReader(fmt.Sprintf(`{"user_id":%q}`, carol)),
		"Content-Type", "application/json", "X-Webhook-Secret", e2eWebhookSecret)
	wantStatus(t, resp, http.StatusNoContent)

	// The client-side cache learns of the drop a moment after it
	// (TECH-NOTES §2): until then a read is served from it, without the
	// CRM. Retry, each time as a new trace, until a read reloads.
	var traceID, callerSpan string
	for tries := 0; ; tries++ {
		before := crm.Hits("orders")
		var tp string
		tp, traceID, callerSpan = newTraceparent()
		resp, body := e.do(&http.Client{}, "GET", "/api/me/orders?offset=0&limit=20", nil, append(bearer, "Traceparent", tp)...)
		wantStatus(t, resp, http.StatusOK)
		if !strings.Contains(body, `"total":10000`) {
			t.Fatalf("carol's orders: %s", body)
		}
		if crm.Hits("orders") > before {
			break
		}
		if tries == 200 {
			t.Fatal("no orders read reached the CRM after the webhook")
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.flush()
	spans := rcv.Trace(traceID)
	t.Logf("the trace as the receiver got it:\n%s", traceTree(spans, callerSpan))

	server, ok := spanNamed(spans, "GET /api/me/orders")
	if !ok {
		t.Fatalf("no server span GET /api/me/orders in the trace; received: %v", names(rcv.Spans()))
	}
	for k, want := range map[string]string{"http.route": "/api/me/orders", "http.request.method": "GET", "http.response.status_code": "200"} {
		if got := server.Attrs[k]; got != want {
			t.Errorf("server span %s=%q, want %q", k, got, want)
		}
	}
	if server.ParentSpanID != callerSpan || server.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("server span: parent %s kind %v, want the caller's %s and SERVER", server.ParentSpanID, server.Kind, callerSpan)
	}
	if got := server.Resource["service.name"]; got != "profilecache-e2e" {
		t.Errorf("service.name=%q, want OTEL_SERVICE_NAME's profilecache-e2e", got)
	}

	redisChildren := 0
	for _, s := range spans {
		if s.ParentSpanID == server.SpanID && strings.HasPrefix(s.Name, "redis ") && s.Attrs["db.system.name"] == "redis" {
			redisChildren++
		}
	}
	if redisChildren == 0 {
		t.Error("the server span has no Redis child spans")
	}
	if load, ok := spanNamed(spans, profile.SpanLoad); !ok || !descends(spans, load, server.SpanID) {
		t.Errorf("no %s span under the server span", profile.SpanLoad)
	}

	crmSpan, ok := spanNamed(spans, "GET /crm/v1/users/{id}/orders")
	if !ok || !descends(spans, crmSpan, server.SpanID) || crmSpan.Kind != tracepb.Span_SPAN_KIND_CLIENT {
		t.Fatalf("no CRM client span for orders under the server span")
	}
	got := crm.Traceparents("orders")
	if want := "00-" + traceID + "-" + crmSpan.SpanID + "-01"; len(got) == 0 || got[len(got)-1] != want {
		t.Errorf("the CRM received traceparent %v, want last %s (the CRM span's)", got, want)
	}

	line := requestLogLine(t, e, traceID)
	if line["span_id"] != server.SpanID {
		t.Errorf("request log line span_id=%v, want the server span's %s", line["span_id"], server.SpanID)
	}
}

// requestLogLine is the request log line of the trace traceID.
func requestLogLine(t *testing.T, e *e2e, traceID string) map[string]any {
	t.Helper()
	for _, l := range strings.Split(e.log.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" && m["trace_id"] == traceID {
			return m
		}
	}
	t.Fatalf("no request log line with trace_id %s in:\n%s", traceID, e.log)
	return nil
}

// traceTree prints spans as a tree under root's children, the Redis
// round trips of a parent summed by command.
func traceTree(spans []otlptest.Span, root string) string {
	kids := map[string][]otlptest.Span{}
	for _, s := range spans {
		kids[s.ParentSpanID] = append(kids[s.ParentSpanID], s)
	}
	for _, k := range kids {
		slices.SortFunc(k, func(a, b otlptest.Span) int { return a.Start.Compare(b.Start) })
	}
	var b strings.Builder
	var walk func(parent string, depth int)
	walk = func(parent string, depth int) {
		type sum struct {
			n int
			d time.Duration
		}
		redis, order := map[string]*sum{}, []string{}
		for _, s := range kids[parent] {
			if strings.HasPrefix(s.Name, "redis ") {
				if redis[s.Name] == nil {
					redis[s.Name] = &sum{}
					order = append(order, s.Name)
				}
				redis[s.Name].n++
				redis[s.Name].d += s.Duration()
				continue
			}
			fmt.Fprintf(&b, "%s%s  %v\n", strings.Repeat("  ", depth), s.Name, s.Duration().Round(time.Microsecond))
			walk(s.SpanID, depth+1)
		}
		for _, name := range order {
			fmt.Fprintf(&b, "%s%d x %s  %v in all\n", strings.Repeat("  ", depth), redis[name].n, name, redis[name].d.Round(time.Microsecond))
		}
	}
	walk(root, 0)
	return b.String()
}

func names(spans []otlptest.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// A background section reload runs in a trace of its own, linked to the
// request that found the section stale.
func TestE2ETraceBackgroundReloadLinked(t *testing.T) {
	crm := crmtest.New(t)
	crm.AddDemo(t, "alice@example.com", "alice-secret")
	e, rcv := startTraced(t, map[string]string{"BACKEND_URL": crm.URL, "PROFILE_FRESH": "orders=1s"})
	bearer := e.apiLogin("alice@example.com", "alice-secret")
	time.Sleep(1100 * time.Millisecond) // past the orders' window: the next read reloads them in the background
	tp, traceID, _ := newTraceparent()
	before := crm.Hits("orders")
	resp, _ := e.do(&http.Client{}, "GET", "/api/me/orders", nil, append(bearer, "Traceparent", tp)...)
	wantStatus(t, resp, http.StatusOK)

	var reload otlptest.Span
	for tries := 0; ; tries++ {
		e.flush()
		var ok bool
		if reload, ok = spanNamed(rcv.Spans(), profile.SpanSectionReload); ok && crm.Hits("orders") > before {
			break
		}
		if tries == 500 {
			t.Fatalf("no %s span exported; spans: %v", profile.SpanSectionReload, names(rcv.Spans()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	server, ok := spanNamed(rcv.Trace(traceID), "GET /api/me/orders")
	if !ok {
		t.Fatal("no server span for the read")
	}
	if reload.TraceID == traceID || reload.ParentSpanID != "" {
		t.Errorf("background reload in trace %s with parent %q, want a trace of its own", reload.TraceID, reload.ParentSpanID)
	}
	if len(reload.Links) != 1 || reload.Links[0] != (otlptest.Link{TraceID: traceID, SpanID: server.SpanID}) {
		t.Errorf("background reload links %v, want the request's span %s/%s", reload.Links, traceID, server.SpanID)
	}
	if reload.Attrs["profilecache.section"] != "orders" {
		t.Errorf("background reload attributes %v, want profilecache.section=orders", reload.Attrs)
	}
	if _, ok := spanNamed(rcv.Trace(reload.TraceID), "GET /crm/v1/users/{id}/orders"); !ok {
		t.Error("the background reload's trace has no CRM call")
	}
}

// The spans of a login, a page of orders and a logout, through a browser
// (form, cookie, CSRF token) and through the API (Bearer token), hold no
// password, token, cookie, CSRF value or e-mail address.
func TestE2ETraceHoldsNoSecrets(t *testing.T) {
	crm := crmtest.New(t)
	crm.RequireToken("crm-bearer-token-0123")
	crm.AddDemo(t, "carol@example.com", "carol-crm-password")
	e, rcv := startTraced(t, map[string]string{"BACKEND_URL": crm.URL, "BACKEND_TOKEN": "crm-bearer-token-0123"})

	c := e.browser()
	_, loginPage := e.do(c, "GET", "/login", nil)
	loginCSRF := csrfFrom(t, loginPage)
	form := url.Values{"email": {"carol@example.com"}, "password": {"carol-crm-password"}, "_csrf": {loginCSRF}}
	resp, _ := e.do(c, "POST", "/login", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	wantStatus(t, resp, http.StatusSeeOther)
	secrets := map[string]string{"password": "carol-crm-password", "email": "carol@example.com", "login CSRF": loginCSRF,
		"CRM token": "crm-bearer-token-0123"}
	for _, ck := range resp.Cookies() {
		secrets["cookie "+ck.Name] = ck.Value
	}
	resp, page := e.do(c, "GET", "/profile?page=2", nil)
	wantStatus(t, resp, http.StatusOK)
	secrets["page CSRF"] = csrfFrom(t, page)
	resp, _ = e.do(c, "POST", "/logout", strings.NewReader(url.Values{"_csrf": {secrets["page CSRF"]}}.Encode()),
		"Content-Type", "application/x-www-form-urlencoded")
	wantStatus(t, resp, http.StatusSeeOther)

	bearer := e.apiLogin("carol@example.com", "carol-crm-password")
	secrets["bearer token"] = strings.TrimPrefix(bearer[1], "Bearer ")
	resp, _ = e.do(&http.Client{}, "GET", "/api/me/orders?offset=20&limit=20", nil, bearer...)
	wantStatus(t, resp, http.StatusOK)
	resp, _ = e.do(&http.Client{}, "POST", "/api/logout", nil, bearer...)
	wantStatus(t, resp, http.StatusNoContent)

	e.flush()
	spans := rcv.Spans()
	for _, want := range []string{"POST /login", "GET /profile", "POST /logout", "POST /api/login", "GET /api/me/orders", "POST /api/logout", "POST /crm/v1/authenticate"} {
		if _, ok := spanNamed(spans, want); !ok {
			t.Errorf("no span %q exported: the search below would prove nothing; spans: %v", want, names(spans))
		}
	}
	for _, s := range otlptest.Strings(spans) {
		for what, secret := range secrets {
			if secret != "" && strings.Contains(strings.ToLower(s), strings.ToLower(secret)) {
				t.Errorf("a span holds the %s: %q", what, s)
			}
		}
	}
	t.Logf("%d spans searched for %d secrets", len(spans), len(secrets))
}
