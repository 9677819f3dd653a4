package logctx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/profilecache/profilecache/internal/logctx"
)

func TestHandlerAddsRequestID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(logctx.NewHandler(slog.NewJSONHandler(&buf, nil))).With("svc", "test")
	ctx := logctx.WithRequestID(context.Background(), "req-42")

	tests := []struct {
		name string
		log  func()
		want string // request_id on the line; "" means none
	}{
		{"ctx with id", func() { log.InfoContext(ctx, "hello") }, "req-42"},
		{"LogAttrs", func() { log.LogAttrs(ctx, slog.LevelWarn, "hello", slog.Int("n", 1)) }, "req-42"},
		{"no ctx", func() { log.Info("hello") }, ""},
		{"ctx without id", func() { log.InfoContext(context.Background(), "hello") }, ""},
		{"already set", func() { log.InfoContext(ctx, "hello", logctx.Key, "explicit") }, "explicit"},
		{"in a group", func() { log.WithGroup("g").InfoContext(ctx, "hello") }, "req-42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf.Reset()
			tt.log()
			line := buf.String()
			if got := strings.Count(line, `"`+logctx.Key+`"`); tt.want != "" && got != 1 {
				t.Fatalf("request_id appears %d times in %s, want once", got, line)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			got, _ := m[logctx.Key].(string)
			if g, ok := m["g"].(map[string]any); ok && got == "" {
				got, _ = g[logctx.Key].(string)
			}
			if got != tt.want {
				t.Fatalf("request_id=%q, want %q in %s", got, tt.want, line)
			}
			if m["svc"] != "test" {
				t.Fatalf("With attrs lost: %s", line)
			}
		})
	}
}

func TestRequestIDRoundTrip(t *testing.T) {
	ctx := context.Background()
	if got := logctx.RequestID(ctx); got != "" {
		t.Fatalf("empty ctx: RequestID=%q, want empty", got)
	}
	if got, want := logctx.RequestID(logctx.WithRequestID(ctx, "abc")), "abc"; got != want {
		t.Fatalf("RequestID=%q, want %q", got, want)
	}
	if got := logctx.RequestID(logctx.WithRequestID(ctx, "")); got != "" {
		t.Fatalf("empty id: RequestID=%q, want empty", got)
	}
}

func TestNewHandlerDoesNotWrapTwice(t *testing.T) {
	var buf bytes.Buffer
	h := logctx.NewHandler(logctx.NewHandler(slog.NewJSONHandler(&buf, nil)))
	slog.New(h).InfoContext(logctx.WithRequestID(context.Background(), "x"), "m")
	if got := strings.Count(buf.String(), logctx.Key); got != 1 {
		t.Fatalf("request_id appears %d times: %s", got, buf.String())
	}
}

func TestHandlerAddsTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(logctx.NewHandler(slog.NewJSONHandler(&buf, nil)))
	tp := sdktrace.NewTracerProvider() // samples everything, exports nowhere
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	recording, span := tp.Tracer("test").Start(logctx.WithRequestID(context.Background(), "req-7"), "op")
	defer span.End()
	unsampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, // valid, but not sampled: no span records it
	}))

	tests := []struct {
		name          string
		ctx           context.Context
		trace, spanID string // "" means absent
	}{
		{"recording span", recording, span.SpanContext().TraceID().String(), span.SpanContext().SpanID().String()},
		{"unsampled span", unsampled, "", ""},
		{"no span", context.Background(), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf.Reset()
			log.InfoContext(tt.ctx, "hello")
			var m map[string]any
			if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
				t.Fatalf("line %q: %v", buf.String(), err)
			}
			gotTrace, _ := m[logctx.TraceIDKey].(string)
			gotSpan, _ := m[logctx.SpanIDKey].(string)
			if gotTrace != tt.trace || gotSpan != tt.spanID {
				t.Fatalf("trace_id=%q span_id=%q, want %q %q: %s", gotTrace, gotSpan, tt.trace, tt.spanID, buf.String())
			}
		})
	}
}
