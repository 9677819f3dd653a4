package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

const configDocPath = "../../docs/configuration.md"

var updateDoc = flag.Bool("update", false, "rewrite the generated tables of docs/configuration.md from the registry")

// The generated part of docs/configuration.md lies between these lines.
const (
	docBegin = "<!-- BEGIN GENERATED from cmd/profilecache/config_vars.go: go test ./cmd/profilecache -run TestConfigurationDoc -update -->"
	docEnd   = "<!-- END GENERATED -->"
)

// TestConfigurationDoc holds docs/configuration.md to the registry: its
// tables are what configDoc writes (every variable, its default, flag and
// meaning), and every variable named in a table anywhere in the file is
// one loadConfig reads, but the OTEL_* ones, which the OpenTelemetry SDK
// reads itself and loadConfig must not.
func TestConfigurationDoc(t *testing.T) {
	var c Config
	vars := c.configVars()
	raw, err := os.ReadFile(configDocPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	before, rest, ok1 := strings.Cut(doc, docBegin+"\n")
	generated, after, ok2 := strings.Cut(rest, docEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s: no %q ... %q block", configDocPath, docBegin, docEnd)
	}
	want := configDoc(vars)
	if *updateDoc {
		if err := os.WriteFile(configDocPath, []byte(before+docBegin+"\n"+want+docEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if generated != want {
		t.Errorf("%s is out of date (%s); run: go test ./cmd/profilecache -run TestConfigurationDoc -update", configDocPath, firstDiff(generated, want))
	}
	known := map[string]bool{}
	for _, v := range vars {
		known[v.Name] = true
	}
	for _, name := range documentedVars(doc) {
		otel := strings.HasPrefix(name, "OTEL_")
		switch {
		case otel && known[name]:
			t.Errorf("%s is read by the OpenTelemetry SDK: loadConfig must not read it too", name)
		case !otel && !known[name]:
			t.Errorf("%s documents %s, which loadConfig does not read", configDocPath, name)
		}
	}
}

// TestConfigVars checks the registry itself: one entry per name, every
// variable with a default or a word on what being unset means, every group
// titled, and flags unique.
func TestConfigVars(t *testing.T) {
	var c Config
	names, flags := map[string]bool{}, map[string]bool{}
	for _, v := range c.configVars() {
		if names[v.Name] {
			t.Errorf("%s registered twice", v.Name)
		}
		names[v.Name] = true
		if (v.Default == "") == (v.Unset == "") {
			t.Errorf("%s: want exactly one of Default (%q) and Unset (%q)", v.Name, v.Default, v.Unset)
		}
		if v.Doc == "" || strings.Contains(v.Doc, "\n") || strings.Contains(v.Doc, "|") || v.parse == nil {
			t.Errorf("%s: want a one-line Doc without '|' and a parser", v.Name)
		}
		if v.Group < 0 || v.Group >= numGroups {
			t.Errorf("%s: group %d has no title", v.Name, v.Group)
		}
		if v.Flag != "" && flags[v.Flag] {
			t.Errorf("flag -%s used twice", v.Flag)
		}
		flags[v.Flag] = true
	}
}

// configDoc writes the registry as one Markdown table per group.
func configDoc(vars []envVar) string {
	var b strings.Builder
	for g := range numGroups {
		fmt.Fprintf(&b, "\n## %s\n\n| variable | default | meaning |\n|---|---|---|\n", groupTitles[g])
		for _, v := range vars {
			if v.Group != g {
				continue
			}
			name := "`" + v.Name + "`"
			if v.Flag != "" {
				name += " (flag `-" + v.Flag + "`)"
			}
			def := v.Unset
			if v.Default != "" {
				def = "`" + v.Default + "`"
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", name, def, v.Doc)
		}
	}
	b.WriteString("\n")
	return b.String()
}

// documentedVars are the variables named first in a table row.
func documentedVars(doc string) []string {
	var names []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z][A-Z0-9_]*)`").FindAllStringSubmatch(doc, -1) {
		names = append(names, m[1])
	}
	return names
}

// firstDiff describes the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("generated line %d is\n\t%s\nwant\n\t%s", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("%d generated lines, want %d", len(g), len(w))
}
