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
)

// Key is the attribute name of the request id on log lines.
const Key = "request_id"

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
// one (web's request log line sets it itself).
func NewHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(handler); ok {
		return h
	}
	return handler{h}
}

type handler struct{ next slog.Handler }

func (h handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" && !hasKey(r, Key) {
		r = r.Clone() // the caller's record may be shared with other handlers
		r.AddAttrs(slog.String(Key, id))
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
