package doclinks_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/profilecache/profilecache/internal/doclinks"
)

// root is the repository, seen from this package's directory.
const root = "../.."

// TestDocLinks: every relative link in the repository's Markdown (README.md,
// docs/, deploy/...) names a file that exists, and every #anchor a heading
// of the page it points at.
func TestDocLinks(t *testing.T) {
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	problems, err := doclinks.Check(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestREADMEFrontPage: the README stays a front page: at most 200 lines,
// opening with exactly the two commands a fresh machine needs.
func TestREADMEFrontPage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 200 {
		t.Errorf("README.md has %d lines, want at most 200: move depth to docs/", len(lines))
	}
	var block []string
	for i, l := range lines {
		if strings.HasPrefix(l, "```") {
			for _, c := range lines[i+1:] {
				if strings.HasPrefix(c, "```") {
					break
				}
				cmd, _, _ := strings.Cut(c, "#")
				block = append(block, strings.TrimSpace(cmd))
			}
			break
		}
	}
	if want := []string{"make run", "make test"}; !slices.Equal(block, want) {
		t.Errorf("README.md's first code block runs %q, want exactly %q", block, want)
	}
}

func TestSlug(t *testing.T) {
	tests := []struct{ heading, want string }{
		{"Guarantees and security", "guarantees-and-security"},
		{"Freshness: per-section stale-while-revalidate", "freshness-per-section-stale-while-revalidate"},
		{"`REDIS_WAIT_REPLICAS`: logins wait for a replica", "redis_wait_replicas-logins-wait-for-a-replica"},
		{"No stalls: bounded batches", "no-stalls-bounded-batches"},
		{"What happens, step by step", "what-happens-step-by-step"},
		{"Forward auth (nginx `auth_request`)", "forward-auth-nginx-auth_request"},
		{"[Links](x.md) and **bold**", "links-and-bold"},
		{"Zoë Ångström × 2", "zoë-ångström--2"},
		{"1. Step one", "1-step-one"},
	}
	for _, tt := range tests {
		if got := doclinks.Slug(tt.heading); got != tt.want {
			t.Errorf("Slug(%q) = %q, want %q", tt.heading, got, tt.want)
		}
	}
}

// TestCheckFindsBrokenLinks: the checker fails on what it is there to catch,
// and not on what only looks like a link.
func TestCheckFindsBrokenLinks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("src/main.go", "package main\n")
	write("docs/a.md", "# A\n\n## Twice\n\n## Twice\n\n<a id=\"custom\"></a>\n\n"+
		"[up](../README.md#top) [code](../src/main.go#L1) [dir](../src/) [self](#twice-1) [id](#custom)\n"+
		"[web](https://example.com/x.md) [mail](mailto:x@example.com)\n")
	write("README.md", "# Top\n\n"+
		"[ok](docs/a.md#twice) [gone](docs/missing.md)\n"+
		"[bad anchor](docs/a.md#nowhere) [self](#top) [self bad](#bottom)\n"+
		"`[not a link](nowhere.md)` and ``[nor](this.md)``\n"+
		"```sh\n[inside a fence](fenced.md)\n# not a heading\n```\n"+
		"[out](../outside.md)\n\n[ref]: docs/ref-missing.md\n")
	problems, err := doclinks.Check(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.String())
	}
	want := []string{
		"README.md:3: docs/missing.md: " + doclinks.MissingFile,
		"README.md:4: docs/a.md#nowhere: " + doclinks.MissingAnchor,
		"README.md:4: #bottom: " + doclinks.MissingAnchor,
		"README.md:10: ../outside.md: " + doclinks.OutsideRoot,
		"README.md:12: docs/ref-missing.md: " + doclinks.MissingFile,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
