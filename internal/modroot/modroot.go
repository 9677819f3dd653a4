// Package modroot finds the repository's root from a test, which runs in
// its package's directory: the tests that need files outside it (the
// Compose files, the pinned axe-core) start there.
package modroot

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the nearest directory above the working directory that has
// a go.mod.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("modroot: no go.mod above the working directory")
		}
		dir = parent
	}
}
