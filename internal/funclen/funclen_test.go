package funclen

import (
	"go/parser"
	"go/token"
	"testing"
)

// maxLines is the longest a function outside tests may be (issue 17).
const maxLines = 60

// TestFunctionLength fails when a function of more than maxLines lines
// appears outside tests in the main module (bench/ and tools/ are modules
// of their own). Split it by meaning, not by line count.
func TestFunctionLength(t *testing.T) {
	funcs, err := Walk("../..")
	if err != nil {
		t.Fatal(err)
	}
	if len(funcs) < 100 {
		t.Fatalf("found %d functions: is the walk rooted at the repository?", len(funcs))
	}
	for _, f := range funcs {
		if f.Lines > maxLines {
			t.Errorf("%s: %s is %d lines, more than %d", f.Pos, f.Name, f.Lines, maxLines)
		}
	}
	t.Logf("longest: %s %s, %d lines", funcs[0].Pos, funcs[0].Name, funcs[0].Lines)
}

func TestFile(t *testing.T) {
	const src = `package p

func short() {}

type T[K any] struct{}

func (t *T[K]) long() {
	_ = func() {
	}
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := File(fset, f)
	want := []Func{{Name: "short", Lines: 1}, {Name: "(*T).long", Lines: 4}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Name != want[i].Name || got[i].Lines != want[i].Lines {
			t.Errorf("got %s %d lines, want %s %d", got[i].Name, got[i].Lines, want[i].Name, want[i].Lines)
		}
	}
}
