package main

import (
	"testing"

	"github.com/profilecache/profilecache/internal/funclen"
)

// maxLines is the longest a harness function may be (issue 17).
const maxLines = 60

// TestFunctionLength is the main module's rule (internal/funclen) for the
// harness: no function over maxLines lines. Split one by meaning, not by
// line count.
func TestFunctionLength(t *testing.T) {
	funcs, err := funclen.Walk(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(funcs) == 0 {
		t.Fatal("found no functions: is the walk rooted at bench/?")
	}
	for _, f := range funcs {
		if f.Lines > maxLines {
			t.Errorf("%s: %s is %d lines, more than %d", f.Pos, f.Name, f.Lines, maxLines)
		}
	}
	t.Logf("longest: %s %s, %d lines", funcs[0].Pos, funcs[0].Name, funcs[0].Lines)
}
