// Package jsonlog is a slog.Handler that writes exactly what
// slog.JSONHandler writes, at a fraction of its cost for the records a
// server logs most: flat attributes that are strings, integers, booleans
// or durations. Anything else (groups, other kinds, ReplaceAttr, AddSource)
// goes to a slog.JSONHandler, so output never depends on the path taken.
//
// It exists for the request log: one line per request, where
// slog.JSONHandler's generic attribute handling cost more than the rest of
// a cached request's logging and metrics together.
package jsonlog

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/profilecache/profilecache/internal/jsonstr"
)

// Handler is the fast JSON handler. Build it with New.
type Handler struct {
	slow  slog.Handler // a slog.JSONHandler with the same options and attrs
	w     *lockedWriter
	level slog.Leveler
	pre   []byte // the WithAttrs attributes, encoded: `,"k":v` each
	fast  bool   // false once a group or a non-flat attribute is in play
}

// New returns a Handler writing to w, one Write per record. opts as for
// slog.NewJSONHandler; nil means the defaults.
func New(w io.Writer, opts *slog.HandlerOptions) *Handler {
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	lw := &lockedWriter{w: w}
	level := opts.Level
	if level == nil {
		level = slog.LevelInfo
	}
	return &Handler{
		slow:  slog.NewJSONHandler(lw, opts),
		w:     lw,
		level: level,
		fast:  opts.ReplaceAttr == nil && !opts.AddSource,
	}
}

// lockedWriter makes the fast path's writes and slog.JSONHandler's
// (which locks only its own) exclude each other.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if !h.fast || !flat(r) {
		return h.slow.Handle(ctx, r)
	}
	bp := bufs.Get().(*[]byte)
	b := append((*bp)[:0], '{')
	if !r.Time.IsZero() {
		b = append(b, `"time":"`...)
		b = r.Time.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `",`...)
	}
	b = append(b, `"level":`...)
	b = appendString(b, r.Level.String())
	b = append(b, `,"msg":`...)
	b = appendString(b, r.Message)
	b = append(b, h.pre...)
	r.Attrs(func(a slog.Attr) bool {
		b = appendAttr(b, a)
		return true
	})
	b = append(b, "}\n"...)
	_, err := h.w.Write(b)
	if cap(b) <= 64<<10 {
		*bp = b
		bufs.Put(bp)
	}
	return err
}

func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	h2 := *h
	h2.slow = h.slow.WithAttrs(as)
	for _, a := range as {
		h2.fast = h2.fast && flatAttr(a)
	}
	if h2.fast {
		h2.pre = append([]byte(nil), h.pre...)
		for _, a := range as {
			h2.pre = appendAttr(h2.pre, a)
		}
	}
	return &h2
}

func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.slow = h.slow.WithGroup(name)
	h2.fast = false
	return &h2
}

// flat reports whether every attribute of r takes the fast path, and the
// time does: slog.JSONHandler reports a year outside 0-9999 as an error.
func flat(r slog.Record) bool {
	if y := r.Time.Year(); !r.Time.IsZero() && (y < 0 || y >= 10000) {
		return false
	}
	ok := true
	r.Attrs(func(a slog.Attr) bool {
		ok = flatAttr(a)
		return ok
	})
	return ok
}

func flatAttr(a slog.Attr) bool {
	if a.Key == "" {
		return false // elided or inlined by slog: leave the rules to it
	}
	switch a.Value.Kind() {
	case slog.KindString, slog.KindInt64, slog.KindUint64, slog.KindBool, slog.KindDuration:
		return true
	}
	return false
}

func appendAttr(b []byte, a slog.Attr) []byte {
	b = append(b, ',')
	b = appendString(b, a.Key)
	b = append(b, ':')
	switch v := a.Value; v.Kind() {
	case slog.KindString:
		b = appendString(b, v.String())
	case slog.KindInt64:
		b = strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		b = strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindBool:
		b = strconv.AppendBool(b, v.Bool())
	case slog.KindDuration:
		b = strconv.AppendInt(b, int64(v.Duration()), 10)
	}
	return b
}

// appendString appends s as slog.JSONHandler does: not HTML-escaped.
func appendString(b []byte, s string) []byte { return jsonstr.Append(b, s, jsonstr.Slog) }
