// Package logwriter batches log output. A busy server logs a line per
// request, and a write(2) per line costs more CPU than formatting it; the
// Writer collects lines and writes them at most every interval, or sooner
// when its buffer fills. Handler flushes at once after a line at or above a
// level, so warnings and errors are never held back.
package logwriter

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Writer buffers writes to an io.Writer. It is safe for concurrent use.
// A crash loses at most the lines of the last interval; Close flushes.
type Writer struct {
	mu     sync.Mutex
	out    io.Writer
	buf    []byte
	size   int
	closed bool

	stop chan struct{}
	done chan struct{}
}

// New returns a Writer that flushes to out every interval and whenever
// size bytes are waiting. Close it to stop its flusher.
func New(out io.Writer, size int, interval time.Duration) *Writer {
	w := &Writer{
		out:  out,
		buf:  make([]byte, 0, size),
		size: size,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go w.flushEvery(interval)
	return w
}

func (w *Writer) flushEvery(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = w.Flush() // nowhere to report it; the next write will see it
		case <-w.stop:
			return
		}
	}
}

// Write buffers p, whole: a line is never split across two writes to out.
// After Close, it writes through.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf)+len(p) > w.size {
		if err := w.flushLocked(); err != nil {
			return 0, err
		}
	}
	if w.closed || len(p) > w.size {
		return w.out.Write(p)
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// Flush writes whatever is buffered.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

func (w *Writer) flushLocked() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.out.Write(w.buf)
	// Dropped on error too: a log sink that fails must not grow memory.
	w.buf = w.buf[:0]
	return err
}

// Close stops the flusher and flushes; later writes go straight to out, so
// that lines logged during shutdown still appear. It is idempotent.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	err := w.flushLocked() // before any write-through, to keep the order
	w.mu.Unlock()
	close(w.stop)
	<-w.done
	return err
}

// Handler wraps h, which writes to w, so that a record at or above level is
// flushed at once.
func (w *Writer) Handler(h slog.Handler, level slog.Leveler) slog.Handler {
	return flushing{next: h, w: w, level: level}
}

type flushing struct {
	next  slog.Handler
	w     *Writer
	level slog.Leveler
}

func (h flushing) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h flushing) Handle(ctx context.Context, r slog.Record) error {
	err := h.next.Handle(ctx, r)
	if r.Level >= h.level.Level() {
		if ferr := h.w.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h flushing) WithAttrs(as []slog.Attr) slog.Handler {
	return flushing{next: h.next.WithAttrs(as), w: h.w, level: h.level}
}

func (h flushing) WithGroup(name string) slog.Handler {
	return flushing{next: h.next.WithGroup(name), w: h.w, level: h.level}
}
