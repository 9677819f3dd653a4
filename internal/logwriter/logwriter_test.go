package logwriter_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/profilecache/profilecache/internal/logwriter"
)

// sink records each write to it as one entry and signals it.
type sink struct {
	mu     sync.Mutex
	writes []string
	wrote  chan struct{}
}

func newSink() *sink { return &sink{wrote: make(chan struct{}, 1000)} }

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.writes = append(s.writes, string(p))
	s.mu.Unlock()
	s.wrote <- struct{}{}
	return len(p), nil
}

func (s *sink) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.writes...)
}

const never = time.Hour

func TestWriter(t *testing.T) {
	tests := []struct {
		name  string
		size  int
		do    func(w *logwriter.Writer)
		wants []string // the writes out saw, in order
	}{
		{"held until flushed", 100, func(w *logwriter.Writer) {}, nil},
		{"flush writes all at once", 100, func(w *logwriter.Writer) { _ = w.Flush() }, []string{"a\nb\n"}},
		{"a full buffer flushes before the line that does not fit", 4, func(w *logwriter.Writer) {
			_, _ = w.Write([]byte("c\n"))
		}, []string{"a\nb\n"}},
		{"a line bigger than the buffer goes through, after the pending ones", 5, func(w *logwriter.Writer) {
			_, _ = w.Write([]byte("long line\n"))
		}, []string{"a\nb\n", "long line\n"}},
		{"close flushes, then writes go through", 100, func(w *logwriter.Writer) {
			_ = w.Close()
			_, _ = w.Write([]byte("late\n"))
			_ = w.Close()
		}, []string{"a\nb\n", "late\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := newSink()
			w := logwriter.New(out, tt.size, never)
			t.Cleanup(func() { _ = w.Close() })
			for _, line := range []string{"a\n", "b\n"} {
				if n, err := w.Write([]byte(line)); n != len(line) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", line, n, err)
				}
			}
			tt.do(w)
			if got := out.get(); fmt.Sprint(got) != fmt.Sprint(tt.wants) {
				t.Errorf("writes %q, want %q", got, tt.wants)
			}
		})
	}
}

func TestWriterFlushesEveryInterval(t *testing.T) {
	out := newSink()
	w := logwriter.New(out, 100, time.Millisecond)
	defer w.Close()
	_, _ = w.Write([]byte("tick\n"))
	select {
	case <-out.wrote:
	case <-time.After(time.Minute):
		t.Fatal("nothing flushed without Flush or Close")
	}
	if got := out.get(); len(got) != 1 || got[0] != "tick\n" {
		t.Errorf("writes %q, want the one line", got)
	}
}

// Many goroutines logging through slog: every line arrives whole, once.
func TestWriterConcurrent(t *testing.T) {
	var out bytes.Buffer // only the Writer touches it, under its lock
	w := logwriter.New(&out, 512, time.Millisecond)
	log := slog.New(slog.NewTextHandler(w, nil))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				log.Info("line", "g", g, "i", i)
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		i := strings.Index(l, "msg=line ")
		if i < 0 {
			t.Fatalf("torn line %q", l)
		}
		seen[l[i:]] = true
	}
	if len(lines) != 1600 || len(seen) != 1600 {
		t.Errorf("%d lines, %d distinct, want 1600", len(lines), len(seen))
	}
}

// Warnings and errors are flushed at once; info lines wait.
func TestHandlerFlushesAtLevel(t *testing.T) {
	out := newSink()
	w := logwriter.New(out, 4096, never)
	defer w.Close()
	log := slog.New(w.Handler(slog.NewTextHandler(w, nil), slog.LevelWarn)).With("svc", "x").WithGroup("g")
	log.Info("quiet")
	if got := out.get(); len(got) != 0 {
		t.Fatalf("info flushed: %q", got)
	}
	log.Log(context.Background(), slog.LevelWarn, "loud")
	got := out.get()
	if len(got) != 1 || !strings.Contains(got[0], "msg=quiet") || !strings.Contains(got[0], "msg=loud") {
		t.Errorf("writes %q, want the info and the warning line in one write", got)
	}
}
