package syncbuf_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/profilecache/profilecache/internal/syncbuf"
)

// Run with -race: concurrent writers and a reader must not race, and no
// write may be lost.
func TestConcurrentWrites(t *testing.T) {
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = b.Write([]byte("x"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if got, want := b.String(), strings.Repeat("x", 800); got != want {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
}
