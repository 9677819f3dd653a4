// Package otlptest is an OTLP/HTTP trace receiver for tests: it accepts
// POST /v1/traces as a collector does, decodes the protobuf
// ExportTraceServiceRequest (the wire format of the OpenTelemetry
// protocol, go.opentelemetry.io/proto/otlp), answers with an
// ExportTraceServiceResponse, and keeps every span it received for the
// test to look at. Anything it cannot decode is answered 400 and fails
// the test: a malformed export is a bug, not noise.
package otlptest

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Span is a received span, its ids in lower-case hex as W3C traceparent
// writes them and its attributes formatted as strings.
type Span struct {
	TraceID, SpanID, ParentSpanID string
	Name                          string
	Kind                          tracepb.Span_SpanKind
	Start, End                    time.Time
	Attrs                         map[string]string
	Events                        []Event
	Links                         []Link
	StatusCode                    tracepb.Status_StatusCode
	StatusMessage                 string
	Resource                      map[string]string // the resource's attributes (service.name, ...)
	Scope                         string            // the instrumentation scope's name
}

// Event is a span event.
type Event struct {
	Name  string
	Attrs map[string]string
}

// Link is a span link.
type Link struct{ TraceID, SpanID string }

// Duration is how long the span lasted.
func (s Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// Receiver is a running receiver. Its methods are safe for concurrent use.
type Receiver struct {
	// URL is the OTEL_EXPORTER_OTLP_ENDPOINT to give an exporter.
	URL string

	tb    testing.TB
	mu    sync.Mutex
	spans []Span
}

// New starts a receiver that lives as long as tb.
func New(tb testing.TB) *Receiver {
	tb.Helper()
	r := &Receiver{tb: tb}
	srv := httptest.NewServer(r)
	tb.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Spans returns every span received so far, in arrival order.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Trace returns the received spans of one trace.
func (r *Receiver) Trace(traceID string) []Span {
	var out []Span
	for _, s := range r.Spans() {
		if s.TraceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		r.tb.Errorf("otlptest: unexpected %s %s", req.Method, req.URL.Path)
		http.NotFound(w, req)
		return
	}
	spans, err := decode(req)
	if err != nil {
		r.tb.Errorf("otlptest: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.spans = append(r.spans, spans...)
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{}) // an empty message always marshals
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func decode(req *http.Request) ([]Span, error) {
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		return nil, fmt.Errorf("content type %q, want application/x-protobuf", ct)
	}
	var body io.Reader = req.Body
	if strings.EqualFold(req.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	var msg coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &msg); err != nil {
		return nil, fmt.Errorf("decode ExportTraceServiceRequest: %w", err)
	}
	var out []Span
	for _, rs := range msg.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := convert(s)
				sp.Resource, sp.Scope = res, ss.GetScope().GetName()
				out = append(out, sp)
			}
		}
	}
	return out, nil
}

func convert(s *tracepb.Span) Span {
	sp := Span{
		TraceID:       hex.EncodeToString(s.GetTraceId()),
		SpanID:        hex.EncodeToString(s.GetSpanId()),
		ParentSpanID:  hex.EncodeToString(s.GetParentSpanId()),
		Name:          s.GetName(),
		Kind:          s.GetKind(),
		Start:         time.Unix(0, int64(s.GetStartTimeUnixNano())),
		End:           time.Unix(0, int64(s.GetEndTimeUnixNano())),
		Attrs:         attrs(s.GetAttributes()),
		StatusCode:    s.GetStatus().GetCode(),
		StatusMessage: s.GetStatus().GetMessage(),
	}
	for _, e := range s.GetEvents() {
		sp.Events = append(sp.Events, Event{Name: e.GetName(), Attrs: attrs(e.GetAttributes())})
	}
	for _, l := range s.GetLinks() {
		sp.Links = append(sp.Links, Link{TraceID: hex.EncodeToString(l.GetTraceId()), SpanID: hex.EncodeToString(l.GetSpanId())})
	}
	return sp
}

func attrs(kvs []*common.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = value(kv.GetValue())
	}
	return m
}

func value(v *common.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *common.AnyValue_StringValue:
		return x.StringValue
	case *common.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *common.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *common.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *common.AnyValue_BytesValue:
		return string(x.BytesValue)
	case *common.AnyValue_ArrayValue:
		var parts []string
		for _, e := range x.ArrayValue.GetValues() {
			parts = append(parts, value(e))
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return fmt.Sprint(v.GetValue())
}

// Strings returns every name, attribute key and value, event and link
// of spans, one per element: what a secrets test searches.
func Strings(spans []Span) []string {
	var out []string
	add := func(m map[string]string) {
		for k, v := range m {
			out = append(out, k, v)
		}
	}
	for _, s := range spans {
		out = append(out, s.Name, s.StatusMessage)
		add(s.Attrs)
		add(s.Resource)
		for _, e := range s.Events {
			out = append(out, e.Name)
			add(e.Attrs)
		}
	}
	return out
}
