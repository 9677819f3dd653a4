// Package doclinks checks the repository's Markdown so that the docs do not
// rot as files move: every relative link must name a file or directory that
// exists, and every #anchor a heading of the page it points at, slugged the
// way GitHub renders it. Its test runs over the whole repository in
// `go test ./...`.
package doclinks

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// Kinds of Problem.
const (
	MissingFile   = "no such file"
	MissingAnchor = "no such heading"
	OutsideRoot   = "points outside the repository"
)

// Problem is one broken link.
type Problem struct {
	File   string // the page holding the link, relative to the root, slash-separated
	Line   int
	Link   string // as written
	Target string // the file it resolves to, relative to the root
	Kind   string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Link, p.Kind)
}

// Link is a link found on a page.
type Link struct {
	Line   int
	Target string
}

// Page is what Check needs of one Markdown file.
type Page struct {
	Anchors map[string]bool // heading slugs and explicit ids
	Links   []Link
}

// Check reads every *.md file under root (hidden directories, testdata,
// vendor and node_modules left out) and returns the broken relative links.
// Links with a scheme (https:, mailto:) are not followed.
func Check(root string) ([]Problem, error) {
	pages := map[string]*Page{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".md") {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		page, err := parseFile(p)
		if err != nil {
			return err
		}
		pages[filepath.ToSlash(rel)] = page
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", root, err)
	}
	var problems []Problem
	for _, file := range sortedKeys(pages) {
		for _, l := range pages[file].Links {
			if p, ok := checkLink(root, pages, file, l); !ok {
				problems = append(problems, p)
			}
		}
	}
	return problems, nil
}

func parseFile(p string) (*Page, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("read page: %w", err)
	}
	defer f.Close()
	page, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return page, nil
}

// checkLink resolves one link of file and says whether it holds.
func checkLink(root string, pages map[string]*Page, file string, l Link) (Problem, bool) {
	target, anchor, _ := strings.Cut(l.Target, "#")
	target, _ = url.PathUnescape(target)
	anchor, _ = url.PathUnescape(anchor)
	resolved := file
	switch {
	case strings.HasPrefix(target, "/"):
		resolved = path.Clean(strings.TrimPrefix(target, "/"))
	case target != "":
		resolved = path.Join(path.Dir(file), target)
	}
	p := Problem{File: file, Line: l.Line, Link: l.Target, Target: resolved}
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		p.Kind = OutsideRoot
		return p, false
	}
	if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(resolved))); err != nil {
		p.Kind = MissingFile
		return p, false
	}
	if anchor == "" || !strings.HasSuffix(resolved, ".md") {
		return p, true // anchors into source files (#L10) are GitHub's, not headings
	}
	if !pages[resolved].Anchors[anchor] {
		p.Kind = MissingAnchor
		return p, false
	}
	return p, true
}

var (
	fence      = regexp.MustCompile("^ {0,3}(`{3,}|~{3,})")
	heading    = regexp.MustCompile(`^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$`)
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refDef     = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)
	htmlID     = regexp.MustCompile(`<[a-zA-Z][^>]*\s(?:id|name)="([^"]+)"`)
	scheme     = regexp.MustCompile(`^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)`)
)

// Parse reads one Markdown page: its anchors and its relative links. Fenced
// code blocks and code spans hold neither.
func Parse(r io.Reader) (*Page, error) {
	page := &Page{Anchors: map[string]bool{}}
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	var open string // the fence of the code block we are in, if any
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := fence.FindStringSubmatch(line); m != nil {
			switch {
			case open == "":
				open = m[1]
			case m[1][0] == open[0] && len(m[1]) >= len(open) && strings.TrimSpace(line) == m[1]:
				open = ""
			}
			continue
		}
		if open != "" {
			continue
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			page.Anchors[uniqueSlug(Slug(m[2]), seen)] = true
		}
		for _, m := range htmlID.FindAllStringSubmatch(line, -1) {
			page.Anchors[m[1]] = true
		}
		text := stripCode(line)
		var targets []string
		for _, m := range inlineLink.FindAllStringSubmatch(text, -1) {
			targets = append(targets, m[1])
		}
		if m := refDef.FindStringSubmatch(text); m != nil {
			targets = append(targets, m[1])
		}
		for _, t := range targets {
			if !scheme.MatchString(t) {
				page.Links = append(page.Links, Link{Line: n, Target: t})
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	return page, nil
}

// uniqueSlug numbers repeated headings as GitHub does: x, x-1, x-2.
func uniqueSlug(s string, seen map[string]int) string {
	n, dup := seen[s]
	seen[s] = n + 1
	if !dup {
		return s
	}
	u := fmt.Sprintf("%s-%d", s, n)
	seen[u]++
	return u
}

var (
	mdLink  = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	htmlTag = regexp.MustCompile(`<[^>]+>`)
)

// Slug is the anchor GitHub gives a heading: its text as rendered (link
// targets, tags and emphasis markers gone), lower-cased, with every
// character but letters, digits, marks, '_', '-' and spaces dropped and
// each space turned into '-'.
func Slug(text string) string {
	text = mdLink.ReplaceAllString(text, "$1")
	text = htmlTag.ReplaceAllString(text, "")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// stripCode drops the code spans of a line: a run of backticks up to the
// next run of the same length.
func stripCode(line string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(line, '`')
		if i < 0 {
			b.WriteString(line)
			return b.String()
		}
		b.WriteString(line[:i])
		n := i
		for n < len(line) && line[n] == '`' {
			n++
		}
		run := line[i:n]
		rest := line[n:]
		end := closingRun(rest, len(run))
		if end < 0 {
			b.WriteString(run) // no closing run: literal backticks
			line = rest
			continue
		}
		line = rest[end+len(run):]
	}
}

// closingRun is the index in s of the first run of exactly n backticks, or -1.
func closingRun(s string, n int) int {
	for i := 0; i < len(s); {
		if s[i] != '`' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] == '`' {
			j++
		}
		if j-i == n {
			return i
		}
		i = j
	}
	return -1
}

func sortedKeys(m map[string]*Page) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
