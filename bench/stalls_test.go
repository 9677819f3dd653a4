package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestParseLatency(t *testing.T) {
	// As go-redis returns LATENCY LATEST and LATENCY HISTORY command.
	latest := []any{
		[]any{"command", int64(1764000000), int64(12), int64(48)},
		[]any{"fast-command", int64(1764000000), int64(50), int64(50)},
		[]any{"expire-cycle", int64(1764000001), int64(1), int64(3)},
	}
	ev, err := parseLatencyLatest(latest)
	if err != nil {
		t.Fatal(err)
	}
	r := stallRun{events: ev}
	if d, name := r.longest(); d != 48*time.Millisecond || name != "command" {
		t.Errorf("longest = %v %q, want 48ms command (a fast command's 50ms is noise)", d, name)
	}
	if d := r.noise(); d != 50*time.Millisecond {
		t.Errorf("noise = %v, want the fast command's 50ms", d)
	}
	if d, name := (stallRun{}).longest(); d != 0 || name != "" {
		t.Errorf("longest without events = %v %q, want 0", d, name)
	}
	if _, err := parseLatencyLatest([]any{[]any{"command", "x"}}); err == nil {
		t.Error("a short LATENCY LATEST entry parsed")
	}

	hist, err := parseLatencyHistory([]any{[]any{int64(1764000000), int64(38)}, []any{int64(1764000002), int64(63)}})
	if err != nil || len(hist) != 2 || hist[1].latency != 63*time.Millisecond || hist[1].at.Unix() != 1764000002 {
		t.Errorf("parseLatencyHistory = %v, %v", hist, err)
	}
	if _, err := parseLatencyHistory([]any{"x"}); err == nil {
		t.Error("a bad LATENCY HISTORY entry parsed")
	}
}

func TestLatenciesSplitAndQuantile(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	var l latencies
	for i := range 100 { // one request per ms, lasting 1..100 ms
		l.add(t0.Add(time.Duration(i)*ms), time.Duration(i+1)*ms)
	}
	in, out := l.split([][2]time.Time{{t0.Add(10 * ms), t0.Add(20 * ms)}, {t0.Add(50 * ms), t0.Add(60 * ms)}})
	if len(in.durs) != 20 || len(out.durs) != 80 {
		t.Fatalf("split: %d in, %d out; want 20 and 80", len(in.durs), len(out.durs))
	}
	tests := []struct {
		l    latencies
		q    float64
		want time.Duration
	}{
		{l, 0.5, 50 * ms},
		{l, 0.99, 99 * ms},
		{l, 1, 100 * ms},
		{l, 0, ms},
		{in, 1, 60 * ms},
		{in, 0.5, 20 * ms},
		{latencies{}, 0.99, 0},
	}
	for _, tt := range tests {
		if got := tt.l.quantile(tt.q); got != tt.want {
			t.Errorf("quantile(%v) of %d = %v, want %v", tt.q, len(tt.l.durs), got, tt.want)
		}
	}
}

func TestPrintStalls(t *testing.T) {
	ms := time.Millisecond
	lat := func(ds ...time.Duration) latencies {
		var l latencies
		for _, d := range ds {
			l.add(time.Time{}, d)
		}
		return l
	}
	round := func(name string, longest, slowest time.Duration, during ...time.Duration) stallRun {
		r := stallRun{name: name, root: "/tmp/" + name, logins: []time.Duration{300 * ms}, during: lat(during...),
			outside: lat(ms), probes: lat(ms), nice: "nice -20", readerNice: "nice -10"}
		if longest > 0 {
			r.events = []latencyEvent{{name: "command", latest: longest, max: longest}}
			r.history = []latencySample{{latency: longest}}
		}
		if slowest > 0 {
			r.slowest = []slowEntry{{dur: slowest, args: []string{"EVAL", "local function gen_keys(base, gen) local p = base", "2", "k1", "k2"}}}
			r.slowlog = 1
		}
		return r
	}
	before := merge([]stallRun{
		round("before", 48*ms, 17930*time.Microsecond, ms, 50*ms),
		round("before", 40*ms, 12*ms, ms),
		round("before", 60*ms, 20*ms, ms),
	})
	after := merge([]stallRun{round("after", 0, 0, ms, 2*ms), round("after", 0, 0, ms), round("after", 3*ms, 1500*time.Microsecond, ms)})
	if d, ev := before.longest(); d != 48*ms || ev != "command" {
		t.Errorf("before: longest = %v %q, want the median round's 48ms command", d, ev)
	}
	if d := slowestDur(before); d != 17930*time.Microsecond {
		t.Errorf("before: slowest = %v, want the median round's 17.93ms", d)
	}
	if len(before.during.durs) != 4 || len(before.logins) != 3 || before.slowlog != 3 {
		t.Errorf("merge pooled %d reads, %d logins and %d SLOWLOG entries; want 4, 3, 3", len(before.during.durs), len(before.logins), before.slowlog)
	}
	var b bytes.Buffer
	printStalls(&b, config{logins: 10, stallReaders: 64, stallRounds: 3}, []stallRun{before, after})
	out := b.String()
	for _, want := range []string{
		"Stalls (issue 11), 3 round(s): ",
		"redis-server at nice -20, the readers at nice -10",
		"| measure | before | after | before / after | target | result |",
		"| 48.00 ms (command; rounds: 48, 40, 60) | none ≥ 1 ms; rounds: <1, <1, 3 |  | < 2 ms | PASS (none ≥ 1 ms; rounds: <1, <1, 3) |",
		"17.93 ms `EVAL local function gen_keys(… 2 …` (3 in all; rounds: 17, 12, 20) | none (1 in all; rounds: <1, <1, 1) |",
		"all rounds) | 3 | 1 |",
		"| the machine's noise: longest fast-command event (O(1) commands; LATENCY LATEST; median of the rounds) | 0 µs; rounds: <1, <1, <1 |",
		"during carol's logins: p50 / p99 / max (count) | 1.00 ms / 50.00 ms / 50.00 ms (4) | 1.00 ms / 2.00 ms / 2.00 ms (4) | 25.0 |",
		"| failed reads | 0 | 0 |  | 0 | PASS (0) |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	one := merge([]stallRun{round("after", 3*ms, 0, ms)})
	printStalls(&b, config{logins: 10, stallReaders: 64, stallRounds: 1}, []stallRun{one})
	if !strings.Contains(b.String(), "| 3.00 ms (command) | < 2 ms | MISS (3.00 ms (command)) |") {
		t.Errorf("one round with a 3 ms stall:\n%s", b.String())
	}
}

func TestPacer(t *testing.T) {
	ctx := t.Context()
	start := time.Now().Add(-time.Hour) // far behind: no waiting, each planned late
	p := pacer{start: start, every: 5 * time.Millisecond}
	for k := range 3 {
		if got, want := p.wait(ctx), start.Add(time.Duration(k)*5*time.Millisecond); !got.Equal(want) {
			t.Errorf("wait %d = %v, want the planned %v", k, got, want)
		}
	}
	p = pacer{start: time.Now(), every: 20 * time.Millisecond}
	p.wait(ctx)
	if at := p.wait(ctx); time.Now().Before(at) {
		t.Errorf("wait returned before its planned time %v", at)
	}
	if got := (&pacer{}).wait(ctx); time.Since(got) > time.Minute {
		t.Errorf("an unpaced wait = %v, want now", got)
	}
}
