// Package funclen finds functions longer than a limit, so that "no function
// over 60 lines outside tests" is a test, not a hope (funclen_test.go walks
// the repository).
package funclen

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Func is one function or method (or function literal at package level)
// and its length in lines, from its first line to its closing brace.
type Func struct {
	Pos   token.Position
	Name  string
	Lines int
}

// Walk returns the functions in the Go files of the module at root, test
// files, testdata, hidden directories and nested modules left out, longest
// first.
func Walk(root string) ([]Func, error) {
	var funcs []Func
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path == root {
				return nil
			}
			if strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" {
				return filepath.SkipDir
			}
			// Another module (bench/, tools/) answers for itself.
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		funcs = append(funcs, File(fset, f)...)
		return nil
	})
	slices.SortStableFunc(funcs, func(a, b Func) int { return b.Lines - a.Lines })
	return funcs, err
}

// File returns the functions declared in f: each declaration counts whole,
// function literals inside it included.
func File(fset *token.FileSet, f *ast.File) []Func {
	var funcs []Func
	for _, decl := range f.Decls {
		fd, ok := decl.(*ast.FuncDecl)
		if !ok {
			continue
		}
		name := fd.Name.Name
		if fd.Recv != nil && len(fd.Recv.List) == 1 {
			name = "(" + typeName(fd.Recv.List[0].Type) + ")." + name
		}
		start, end := fset.Position(fd.Pos()), fset.Position(fd.End())
		funcs = append(funcs, Func{Pos: start, Name: name, Lines: end.Line - start.Line + 1})
	}
	return funcs
}

func typeName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return "*" + typeName(t.X)
	case *ast.IndexExpr:
		return typeName(t.X)
	case *ast.IndexListExpr:
		return typeName(t.X)
	case *ast.Ident:
		return t.Name
	}
	return "?"
}
