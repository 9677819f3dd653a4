package browsertest

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/profilecache/profilecache/internal/modroot"
)

// axePackage pins the axe-core version; scripts/ensure-deps.sh axe (run by
// `make deps`, so by `make test`) installs exactly it, from the lock file
// beside it, into .cache/axe at the module root.
//
//go:embed axe/package.json
var axePackage []byte

// AxeEnv names a variable that points at another axe.min.js.
const AxeEnv = "PROFILECACHE_AXE_JS"

// AxeTags are the rule sets checked: WCAG 2.0, 2.1 and 2.2, levels A and AA.
var AxeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"}

// Axe is axe-core's source, loaded once per test.
type Axe struct {
	Version string
	source  string
}

// LoadAxe reads the pinned axe-core, failing the test (never skipping it:
// an accessibility check that quietly does not run protects nothing) when
// it is missing or is another version.
func LoadAxe(tb testing.TB) *Axe {
	tb.Helper()
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(axePackage, &pkg); err != nil {
		tb.Fatalf("browsertest: axe/package.json: %v", err)
	}
	want := pkg.Dependencies["axe-core"]
	path := os.Getenv(AxeEnv)
	if path == "" {
		path = filepath.Join(modroot.Dir(tb), ".cache", "axe", "node_modules", "axe-core", "axe.min.js")
	}
	src, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("browsertest: axe-core %s not found (%v): run `make deps` (scripts/ensure-deps.sh axe), or set %s", want, err, AxeEnv)
	}
	if first, _, _ := strings.Cut(string(src), "\n"); os.Getenv(AxeEnv) == "" && first != "/*! axe v"+want {
		tb.Fatalf("browsertest: %s is not axe-core %s: run `make deps` (scripts/ensure-deps.sh axe)", path, want)
	}
	return &Axe{Version: want, source: string(src)}
}

// Violation is one failed axe rule and the elements that fail it.
type Violation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  []any  `json:"target"` // CSS selectors; nested for shadow DOM
		Summary string `json:"failureSummary"`
	} `json:"nodes"`
}

func (v Violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s", v.ID, v.Impact, v.Help)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n    %v: %s", n.Target, strings.ReplaceAll(n.Summary, "\n", "; "))
	}
	return b.String()
}

// Run checks the current document in ctx's tab against AxeTags, injecting
// axe-core first unless this document already has it.
func (a *Axe) Run(ctx context.Context) ([]Violation, error) {
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof window.axe === 'object'`))
	if err != nil {
		return nil, err
	}
	if !loaded {
		if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](a.source)); err != nil {
			return nil, fmt.Errorf("inject axe-core: %w", err)
		}
	}
	tags, _ := json.Marshal(AxeTags)
	return chromedp.Run(ctx, chromedp.Evaluate[[]Violation](
		`axe.run(document, {runOnly: {type: 'tag', values: `+string(tags)+`}, resultTypes: ['violations']}).then(r => r.violations)`,
		chromedp.EvalAwaitPromise))
}
