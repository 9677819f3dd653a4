package jsonlog_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/profilecache/profilecache/internal/jsonlog"
)

// same logs with a jsonlog.Handler and with a slog.JSONHandler and
// compares the bytes.
func same(t *testing.T, opts *slog.HandlerOptions, build func(h slog.Handler) slog.Handler, r slog.Record) {
	t.Helper()
	var fast, want bytes.Buffer
	hf := build(jsonlog.New(&fast, opts))
	hs := build(slog.NewJSONHandler(&want, opts))
	if err := hf.Handle(context.Background(), r.Clone()); err != nil {
		t.Fatal(err)
	}
	if err := hs.Handle(context.Background(), r.Clone()); err != nil {
		t.Fatal(err)
	}
	if fast.String() != want.String() {
		t.Errorf("jsonlog wrote\n%s\nslog.JSONHandler wrote\n%s", fast.String(), want.String())
	}
}

var at = time.Date(2026, 11, 22, 0, 19, 4, 123456789, time.FixedZone("CET", 3600))

var awkward = []string{"", "plain", `"quoted" \back\`, "<html> & </html>", "\x00\x1f\x7f\b\f\n\r\t",
	"\u2028\u2029", "bad \xff", "cut \xe2\x82", "Zoë 😀"}

func TestSameAsJSONHandler(t *testing.T) {
	plain := func(h slog.Handler) slog.Handler { return h }
	record := func(attrs ...slog.Attr) slog.Record {
		r := slog.NewRecord(at, slog.LevelInfo, "request", 0)
		r.AddAttrs(attrs...)
		return r
	}
	tests := []struct {
		name  string
		opts  *slog.HandlerOptions
		build func(slog.Handler) slog.Handler
		r     slog.Record
	}{
		{"request line", nil, plain, record(
			slog.String("method", "GET"), slog.String("path", "/api/me"), slog.String("route", "/api/me"),
			slog.Int("status", 200), slog.Duration("latency", 12345*time.Nanosecond),
			slog.String("remote_ip", "127.0.0.1"), slog.String("request_id", "abc-1"))},
		{"every flat kind", nil, plain, record(slog.Int64("min", math.MinInt64), slog.Uint64("max", math.MaxUint64),
			slog.Bool("t", true), slog.Bool("f", false), slog.Duration("neg", -time.Second))},
		{"no attrs, zero time", nil, plain, slog.NewRecord(time.Time{}, slog.LevelWarn, "hi", 0)},
		{"custom level", nil, plain, slog.NewRecord(at, slog.LevelInfo+2, "x", 0)},
		{"debug enabled", &slog.HandlerOptions{Level: slog.LevelDebug}, plain, slog.NewRecord(at, slog.LevelDebug, "d", 0)},
		{"year 10000", nil, plain, slog.NewRecord(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), slog.LevelInfo, "y", 0)},
		{"with attrs", nil, func(h slog.Handler) slog.Handler {
			return h.WithAttrs([]slog.Attr{slog.String("svc", "pc"), slog.Int("n", 1)}).WithAttrs([]slog.Attr{slog.Bool("b", true)})
		}, record(slog.String("k", "v"))},
		{"with a group", nil, func(h slog.Handler) slog.Handler {
			return h.WithAttrs([]slog.Attr{slog.String("svc", "pc")}).WithGroup("g").WithAttrs([]slog.Attr{slog.Int("n", 1)})
		}, record(slog.String("k", "v"))},
		{"with a non-flat attr", nil, func(h slog.Handler) slog.Handler {
			return h.WithAttrs([]slog.Attr{slog.Time("t", at)})
		}, record(slog.String("k", "v"))},
		{"non-flat attrs", nil, plain, record(slog.String("a", "b"), slog.Any("err", errors.New("boom")),
			slog.Float64("f", 1.5), slog.Time("t", at), slog.Group("g", slog.Int("x", 1)), slog.Any("nil", nil))},
		{"empty key", nil, plain, record(slog.String("", "v"), slog.Attr{}, slog.Group("", slog.Int("x", 1)))},
		{"replace attr", &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == "k" {
				a.Value = slog.StringValue("replaced")
			}
			return a
		}}, plain, record(slog.String("k", "v"))},
	}
	for _, s := range awkward {
		tests = append(tests, struct {
			name  string
			opts  *slog.HandlerOptions
			build func(slog.Handler) slog.Handler
			r     slog.Record
		}{"string " + s, nil, func(h slog.Handler) slog.Handler {
			return h.WithAttrs([]slog.Attr{slog.String(s+"pre", s)})
		}, func() slog.Record {
			r := slog.NewRecord(at, slog.LevelError, s, 0)
			r.AddAttrs(slog.String(s+"k", s))
			return r
		}()})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { same(t, tt.opts, tt.build, tt.r) })
	}
}

func TestEnabled(t *testing.T) {
	h := jsonlog.New(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn})
	if h.Enabled(context.Background(), slog.LevelInfo) || !h.Enabled(context.Background(), slog.LevelWarn) {
		t.Error("Enabled does not follow the level")
	}
	if !jsonlog.New(&bytes.Buffer{}, nil).Enabled(context.Background(), slog.LevelInfo) {
		t.Error("default level is not Info")
	}
}

func FuzzSameAsJSONHandler(f *testing.F) {
	for _, s := range awkward {
		f.Add(s, s, s, int64(-1), uint64(7), true, int64(1767225600), int64(5))
	}
	f.Fuzz(func(t *testing.T, msg, key, val string, i int64, u uint64, b bool, sec, nsec int64) {
		r := slog.NewRecord(time.Unix(sec%253402300800, nsec%1e9).UTC(), slog.Level(i%16), msg, 0)
		r.AddAttrs(slog.String(key, val), slog.Int64(key+"i", i), slog.Uint64("u", u), slog.Bool("b", b),
			slog.Duration("d", time.Duration(i)), slog.String("x", val))
		same(t, nil, func(h slog.Handler) slog.Handler { return h.WithAttrs([]slog.Attr{slog.String(val, key)}) }, r)
	})
}

func BenchmarkRequestLine(b *testing.B) {
	for _, bc := range []struct {
		name string
		h    slog.Handler
	}{{"jsonlog", jsonlog.New(discard{}, nil)}, {"slog.JSONHandler", slog.NewJSONHandler(discard{}, nil)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := slog.NewRecord(at, slog.LevelInfo, "request", 0)
				r.AddAttrs(slog.String("method", "GET"), slog.String("path", "/api/me"), slog.String("route", "/api/me"),
					slog.Int("status", 200), slog.Duration("latency", 12345), slog.String("remote_ip", "127.0.0.1"),
					slog.String("request_id", "abcdefghijklm-1f3c"))
				_ = bc.h.Handle(context.Background(), r)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
