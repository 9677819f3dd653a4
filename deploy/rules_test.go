package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/profilecache/profilecache/internal/metrics"
)

// The Prometheus rules of deploy/prometheus/ (docs/operations.md). promtool
// checks their syntax and runs their unit tests (make rules-test); this
// checks what promtool cannot: that they speak of metrics that exist, that
// every alert is complete and has a runbook section, and that the unit
// tests show every alert both firing and silent.

type ruleFile struct {
	Groups []struct {
		Name  string
		Rules []struct {
			Record, Alert, Expr, For string
			Labels, Annotations      map[string]string
		}
	}
}

type ruleTestFile struct {
	Tests []struct {
		AlertRuleTest []struct {
			Alertname string
			ExpAlerts []any `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	}
}

const runbookBase = "https://github.com/profilecache/profilecache/blob/main/docs/operations.md#"

func TestAlertRules(t *testing.T) {
	names := metricNames(t)
	anchors := headingAnchors(t, "../docs/operations.md")
	files, _ := filepath.Glob("prometheus/*.rules.yml")
	if len(files) == 0 {
		t.Fatal("no prometheus/*.rules.yml")
	}
	used := regexp.MustCompile(`(?:^|[^:\w])(profilecache_\w+)`)
	var alerts []string
	for _, f := range files {
		var rf ruleFile
		readYAML(t, f, &rf)
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				for _, m := range used.FindAllStringSubmatch(r.Expr, -1) {
					if !names[m[1]] {
						t.Errorf("%s: %s%s uses %s, which internal/metrics does not export", f, r.Record, r.Alert, m[1])
					}
				}
				if r.Alert == "" {
					continue
				}
				alerts = append(alerts, r.Alert)
				if d, err := time.ParseDuration(r.For); err != nil || d <= 0 {
					t.Errorf("%s: %s: for %q, want a duration", f, r.Alert, r.For)
				}
				if s := r.Labels["severity"]; s != "page" && s != "ticket" {
					t.Errorf("%s: %s: severity %q, want page or ticket", f, r.Alert, s)
				}
				for _, a := range []string{"summary", "description"} {
					if r.Annotations[a] == "" {
						t.Errorf("%s: %s: no %s", f, r.Alert, a)
					}
				}
				anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookBase)
				if !ok || !anchors[anchor] {
					t.Errorf("%s: %s: runbook_url %q is not a section of docs/operations.md", f, r.Alert, r.Annotations["runbook_url"])
				}
			}
		}
	}
	checkAlertTests(t, alerts)
}

// checkAlertTests: every alert has a unit test case where it fires and one
// where it stays silent.
func checkAlertTests(t *testing.T, alerts []string) {
	fired, silent := map[string]int{}, map[string]int{}
	files, _ := filepath.Glob("prometheus/tests/*.yml")
	for _, f := range files {
		var tf ruleTestFile
		readYAML(t, f, &tf)
		for _, tc := range tf.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fired[a.Alertname]++
				} else {
					silent[a.Alertname]++
				}
			}
		}
	}
	for _, a := range alerts {
		if fired[a] == 0 || silent[a] == 0 {
			t.Errorf("%s: %d test cases where it fires, %d where it is silent; want at least one of each", a, fired[a], silent[a])
		}
	}
	t.Logf("%d alerts, each tested firing and silent", len(alerts))
}

// metricNames is every series name profilecache exports, histograms'
// _bucket, _count and _sum included.
func metricNames(t *testing.T) map[string]bool {
	m := metrics.New()
	// Vectors have no series until first used.
	m.ObserveRequest("/x", "GET", 200, 0)
	m.BackendLoad(0, nil)
	m.LockWait(0)
	m.TokenValidation("ok")
	m.RedisError("timeout")
	m.RedisCache(true)
	m.BackendRequest("basic", "200", 0)
	m.BackendRetry("basic")
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_count", "_sum"} {
				names[mf.GetName()+s] = true
			}
		}
	}
	return names
}

// headingAnchors are the anchors GitHub gives the headings of a Markdown
// file: lowercased, punctuation dropped, spaces as hyphens.
func headingAnchors(t *testing.T, path string) map[string]bool {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		h = strings.Map(func(r rune) rune {
			switch {
			case r == ' ':
				return '-'
			case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
				return r
			}
			return -1
		}, h)
		anchors[h] = true
	}
	return anchors
}

func readYAML(t *testing.T, path string, v any) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
