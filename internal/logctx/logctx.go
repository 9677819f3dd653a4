// Package logctx carries a request's id in its context and puts it on every
// log line written with that context, so that the lines of one request can
// be found together however deep in the service they were written (the
// profile service, the auth middleware, the Redis store, the CRM client).
//
// The rule for code that logs: use the *Context variants of slog
// (InfoContext, LogAttrs(ctx, ...)) with the request's context.
package logctx

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Key is the attribute name of the request id on log lines.
const Key = "request_id"

// Attribute names of the trace and span ids on the lines logged while a
// span records (tracing is on and the request is sampled), so that a log
// line leads to its trace.
const (
	TraceIDKey = "trace_id"
	SpanIDKey  = "span_id"
)

type ctxKey struct{}

// WithRequestID returns ctx carrying the request id id.
func WithRequestID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, id)
}

// RequestID is the request id ctx carries, or "".
func RequestID(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// NewHandler wraps h so that every record logged with a context that carries
// a request id gets a request_id attribute, unless the record already has
// one (web's request log line sets it itself), and one logged within a
// recording span gets trace_id and span_id.
func NewHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(handler); ok {
		return h
	}
	return handler{h}
}

type handler struct{ next slog.Handler }

func (h handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	cloned := false
	if id := RequestID(ctx); id != "" && !hasKey(r, Key) {
		r = r.Clone() // the caller's record may be shared with other handlers
		cloned = true
		r.AddAttrs(slog.String(Key, id))
	}
	// Tracing off: no span in ctx, and this is one context lookup.
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		if !cloned {
			r = r.Clone()
		}
		sc := span.SpanContext()
		r.AddAttrs(slog.String(TraceIDKey, sc.TraceID().String()), slog.String(SpanIDKey, sc.SpanID().String()))
	}
	return h.next.Handle(ctx, r)
}

func (h handler) WithAttrs(as []slog.Attr) slog.Handler { return handler{h.next.WithAttrs(as)} }
func (h handler) WithGroup(name string) slog.Handler    { return handler{h.next.WithGroup(name)} }

func hasKey(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}
