package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	ms := time.Millisecond
	upTo := func(n int) []time.Duration { // 1 ms … n ms
		xs := make([]time.Duration, n)
		for i := range xs {
			xs[i] = time.Duration(i+1) * ms
		}
		return xs
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"none", nil, 0.99, 0},
		{"one", []time.Duration{7 * ms}, 0.999, 7 * ms},
		{"p50 of 4: the 2nd", upTo(4), 0.5, 2 * ms},
		{"p50 of 5: the 3rd", upTo(5), 0.5, 3 * ms},
		{"p99 of 100: the 99th", upTo(100), 0.99, 99 * ms},
		{"p99 of 1000: the 990th", upTo(1000), 0.99, 990 * ms},
		{"p99.9 of 1000: the 999th, not the max", upTo(1000), 0.999, 999 * ms},
		{"p99.9 of 30000: the 29970th", upTo(30000), 0.999, 29970 * ms},
		{"p99.9 of 100: the max", upTo(100), 0.999, 100 * ms},
		{"q 0: the min", upTo(10), 0, ms},
		{"q 1: the max", upTo(10), 1, 10 * ms},
	}
	for _, tt := range tests {
		if got := quantile(tt.sorted, tt.q); got != tt.want {
			t.Errorf("%s: quantile(%v) = %v, want %v", tt.name, tt.q, got, tt.want)
		}
	}
}

// onSchedule are n samples sent at rate, one every 1/rate from t0, each
// taking lat(i).
func onSchedule(t0 time.Time, rate, n int, lat func(i int) time.Duration) []sample {
	period := time.Second / time.Duration(rate)
	out := make([]sample, n)
	for i := range out {
		out[i] = sample{seq: uint64(i), sent: t0.Add(time.Duration(i) * period), latency: lat(i), ok: true}
	}
	return out
}

func TestSummarize(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	// 1000 requests at 100/s: latency i µs... with a 50 ms one at #500.
	s := onSchedule(t0, 100, 1000, func(i int) time.Duration { return time.Duration(i+1) * time.Microsecond })
	s[500].latency = 50 * ms
	// Three failures of two kinds: each kind listed once.
	s[10].ok, s[10].err = false, "status 503"
	s[11].ok, s[11].err = false, "status 503"
	s[12].ok, s[12].err = false, "connection refused"
	// Vegeta reports results in the order they end, not the order sent.
	slices.Reverse(s)

	r := summarize(s, 100)
	if r.rate != 100 || r.requests != 1000 || r.okCount != 997 {
		t.Errorf("rate, requests, ok = %d, %d, %d; want 100, 1000, 997", r.rate, r.requests, r.okCount)
	}
	if !slices.Equal(r.errors, []string{"connection refused", "status 503"}) {
		t.Errorf("errors = %q, want each kind once", r.errors)
	}
	// Sorted: 1 µs … 1000 µs without 501 µs, plus 50 ms at the top.
	if r.p50 != 500*time.Microsecond || r.p99 != 991*time.Microsecond || r.p999 != 1000*time.Microsecond || r.max != 50*ms {
		t.Errorf("p50, p99, p99.9, max = %v, %v, %v, %v; want 500µs, 991µs, 1ms, 50ms", r.p50, r.p99, r.p999, r.max)
	}
	if r.sentRate < 99.99 || r.sentRate > 100.01 {
		t.Errorf("sentRate = %v, want 100", r.sentRate)
	}
	if r.lag != 0 || !r.held() {
		t.Errorf("on schedule: lag %v, held %v; want 0, true", r.lag, r.held())
	}
}

func TestSummarizeNotHeld(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	// Asked for 100/s; the generator's workers were all busy and it sent
	// at 80/s: a closed model, the table must say so.
	s := onSchedule(t0, 80, 400, func(int) time.Duration { return time.Millisecond })
	r := summarize(s, 100)
	if r.held() {
		t.Errorf("sent at %.1f/s of 100: held() = true, want false", r.sentRate)
	}
	// Sent 1/80 s apart against a schedule of 1/100 s: the last is
	// 399 × 2.5 ms late; p99 the 396th sample's 395 × 2.5 ms.
	if want := 395 * 2500 * time.Microsecond; r.lag != want {
		t.Errorf("lag p99 = %v, want %v", r.lag, want)
	}
	if got := summarize(s, 84); !got.held() {
		t.Errorf("sent at %.1f/s of 84 (95 %%): held() = false, want true", got.sentRate)
	}
}

func TestSendLags(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	s := onSchedule(t0, 1000, 10, func(int) time.Duration { return ms })
	s[4].sent = s[4].sent.Add(3 * ms) // one sent late
	// The first sent late too: the least late one is on time, not the first.
	s[0].sent = s[0].sent.Add(ms)
	got := sendLags(s, 1000)
	want := []time.Duration{0, 0, 0, 0, 0, 0, 0, 0, ms, 3 * ms}
	if !slices.Equal(got, want) {
		t.Errorf("sendLags = %v, want %v", got, want)
	}
}

// fixedRuns are rounds at rate with these p99s (p50 a quarter, max twice)
// and the given share of requests sent.
func fixedRuns(rate int, sentShare float64, p99s ...time.Duration) []fixedResult {
	var out []fixedResult
	for _, p := range p99s {
		out = append(out, fixedResult{
			rate: rate, requests: int64(rate) * 10, okCount: int64(rate) * 10, sentRate: sentShare * float64(rate),
			p50: p / 4, p99: p, p999: p * 3 / 2, max: 2 * p,
			srvCPU: 40 * time.Microsecond, redisCPU: time.Microsecond, genCPU: 30 * time.Microsecond,
		})
	}
	return out
}

func TestAggregateFixed(t *testing.T) {
	ms := time.Millisecond
	rs := fixedRuns(3000, 1, 2*ms, 9*ms, 3*ms)
	rs[1].okCount -= 2
	rs[1].errors = []string{"status 503"}
	rs[2].errors = []string{"status 503", "timeout"}
	rs[0].sentRate, rs[1].sentRate, rs[2].sentRate = 2990, 3001, 2000
	got := aggregateFixed(rs)
	if got.p99 != 3*ms || got.p50 != 750*time.Microsecond || got.p999 != 4500*time.Microsecond {
		t.Errorf("p50, p99, p99.9 = %v, %v, %v; want the medians 750µs, 3ms, 4.5ms", got.p50, got.p99, got.p999)
	}
	if got.max != 18*ms {
		t.Errorf("max = %v, want the largest, 18ms", got.max)
	}
	if got.sentRate != 2990 || got.requests != 90000 || got.okCount != 89998 {
		t.Errorf("sentRate, requests, ok = %v, %d, %d; want 2990, 90000, 89998", got.sentRate, got.requests, got.okCount)
	}
	if !slices.Equal(got.errors, []string{"status 503", "timeout"}) {
		t.Errorf("errors = %q", got.errors)
	}
	if got.rate != 3000 || got.srvCPU != 40*time.Microsecond {
		t.Errorf("rate %d, srvCPU %v", got.rate, got.srvCPU)
	}
	if z := aggregateFixed(nil); z.requests != 0 || z.p99 != 0 {
		t.Errorf("no rounds: %+v, want zero", z)
	}
}

func TestP99Ratio(t *testing.T) {
	ms := time.Millisecond
	// Round 2 was slow for both: per round 1.1, 1.1, 2.0 → 1.1, where
	// the medians' ratio would be 3.3 / 3 = 1.1 too, and the means' 1.43.
	ours := fixedRuns(3000, 1, 2200*time.Microsecond, 33*ms, 6*ms)
	bare := fixedRuns(3000, 1, 2*ms, 30*ms, 3*ms)
	if got := p99Ratio(ours, bare); got < 1.0999 || got > 1.1001 {
		t.Errorf("p99Ratio = %v, want 1.1", got)
	}
	// Only the rounds both have.
	if got := p99Ratio(ours[:1], bare); got < 1.0999 || got > 1.1001 {
		t.Errorf("p99Ratio over 1 round = %v, want 1.1", got)
	}
}

func TestFixedVerdicts(t *testing.T) {
	ms := time.Millisecond
	bare := fixedRuns(3000, 1, 2*ms, 2*ms, 2*ms)
	blob := fixedRuns(3000, 1, 5*ms, 5*ms, 5*ms)
	tests := []struct {
		name    string
		rs      fixedRounds
		targets []string
		results []string
	}{
		{"both met", fixedRounds{bare, blob, fixedRuns(3000, 1, 2400*time.Microsecond, 2*ms, 1*ms)},
			[]string{"p99 ≤ 1.2 × bare's", "p99 < blob's"},
			[]string{"PASS (1.00 × bare's)", "PASS (0.40 × blob's)"}},
		{"exactly 1.2 × bare's", fixedRounds{bare, blob, fixedRuns(3000, 1, 2400*time.Microsecond, 2400*time.Microsecond, 2400*time.Microsecond)},
			[]string{"p99 ≤ 1.2 × bare's", "p99 < blob's"},
			[]string{"PASS (1.20 × bare's)", "PASS (0.48 × blob's)"}},
		{"above 1.2 × bare's", fixedRounds{bare, blob, fixedRuns(3000, 1, 2500*time.Microsecond, 3*ms, 3*ms)},
			[]string{"p99 ≤ 1.2 × bare's", "p99 < blob's"},
			[]string{"MISS (1.50 × bare's)", "PASS (0.60 × blob's)"}},
		{"equal to blob's", fixedRounds{bare, blob, fixedRuns(3000, 1, 5*ms, 5*ms, 5*ms)},
			[]string{"p99 ≤ 1.2 × bare's", "p99 < blob's"},
			[]string{"MISS (2.50 × bare's)", "MISS (1.00 × blob's)"}},
		{"blob did not hold the rate", fixedRounds{bare, fixedRuns(3000, 0.5, 5*ms, 5*ms, 5*ms), fixedRuns(3000, 1, 2*ms, 2*ms, 2*ms)},
			[]string{"p99 ≤ 1.2 × bare's", "p99 < blob's", "rate held (open model)"},
			[]string{"PASS (1.00 × bare's)", "PASS (0.40 × blob's)", "MISS (blob 1,500 of 3,000 req/s)"}},
	}
	for _, tt := range tests {
		var targets, results []string
		for _, v := range fixedVerdicts(tt.rs) {
			targets = append(targets, v.target)
			results = append(results, v.result())
		}
		if !slices.Equal(targets, tt.targets) || !slices.Equal(results, tt.results) {
			t.Errorf("%s: %q → %q, want %q → %q", tt.name, targets, results, tt.targets, tt.results)
		}
	}

	ours := fixedRuns(3000, 1, 2*ms)
	ours[0].okCount -= 3
	vs := fixedVerdicts(fixedRounds{bare[:1], blob[:1], ours})
	if last := vs[len(vs)-1]; last.target != "no errors" || last.ok || last.got != "3 of 30000 failed" {
		t.Errorf("with errors: last verdict %+v, want a MISS of no errors, 3 of 30000 failed", last)
	}
}

func fixedTableResults() *fixedResults {
	ms, us := time.Millisecond, time.Microsecond
	cfg := config{rounds: 3, warmup: 2 * time.Second, load: load{duration: 10 * time.Second},
		parts: partsConfig{rateAlice: 3000, rateCarol: 100}}
	fr := &fixedResults{cfg: cfg, started: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC), elapsed: time.Minute, load: [2]string{"0.10 0.20 0.30", "1.00 1.10 1.20"}}
	for _, bc := range cases {
		rate := cfg.parts.rate(bc)
		fr.rounds = append(fr.rounds, fixedRounds{
			fixedRuns(rate, 1, 1*ms, 3*ms, 2*ms),
			fixedRuns(rate, 1, 4*ms, 6*ms, 5*ms),
			fixedRuns(rate, 1, 1100*us, 3*ms, 2400*us),
		})
	}
	// carol's blob could not keep up.
	fr.rounds[1][1] = fixedRuns(100, 0.5, 400*ms, 500*ms, 450*ms)
	return fr
}

func TestPrintFixedTable(t *testing.T) {
	var b strings.Builder
	printFixedTable(&b, fixedTableResults())
	out := b.String()
	want := []string{
		"30,000 requests per run for alice, 1,000 for carol",
		"load average 0.10 0.20 0.30 before, 1.00 1.10 1.20 after; 1m0s in all",
		"| GET /api/me, alice | 3,000 | bare | 3,000 | 100 % | 500 µs | 2.00 ms | 3.00 ms | 6.00 ms | 1.00 | 0 µs | 40 + 1 + 30 |  |  |",
		"|  |  | blob | 3,000 | 100 % | 1.25 ms | 5.00 ms | 7.50 ms | 12.00 ms | 2.50 | 0 µs | 40 + 1 + 30 |  |  |",
		// p99 × bare per round: 1.1, 1.0, 1.2 → 1.1; × blob: 0.275, 0.5, 0.48 → 0.48.
		"|  |  | **profilecache** | 3,000 | 100 % | 600 µs | 2.40 ms | 3.60 ms | 6.00 ms | 1.10 | 0 µs | 40 + 1 + 30 | p99 ≤ 1.2 × bare's; p99 < blob's | PASS (1.10 × bare's); PASS (0.48 × blob's) |",
		"| GET /api/me, carol | 100 | bare | 100 |",
		"|  |  | blob | 50 | 100 % | 112 ms | 450 ms | 675 ms | 1000 ms | 225.00 | 0 µs | 40 + 1 + 30 |  | rate not held: 50 of 100 req/s sent |",
		"| PASS (1.10 × bare's); PASS (0.01 × blob's); MISS (blob 50 of 100 req/s) |",
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("printFixedTable: no %q in\n%s", w, out)
		}
	}
	if n := strings.Count(out, "| **profilecache** |"); n != len(cases) {
		t.Errorf("printFixedTable: %d profilecache rows, want %d\n%s", n, len(cases), out)
	}
	if !strings.Contains(out, "3 of 36 runs did not get their requests sent at the asked rate") {
		t.Errorf("printFixedTable: no note of the 3 runs that missed their rate in\n%s", out)
	}

	// All held: no such note.
	fr := fixedTableResults()
	fr.rounds[1][1] = fixedRuns(100, 1, 400*time.Millisecond)
	b.Reset()
	printFixedTable(&b, fr)
	if strings.Contains(b.String(), "did not get their requests sent") {
		t.Errorf("printFixedTable with every rate held: %s", b.String())
	}
}

func TestFmtPercent(t *testing.T) {
	tests := []struct {
		ok, all int64
		want    string
	}{
		{0, 0, "–"},
		{10, 10, "100 %"},
		{99999, 100000, "99.99 %"}, // never rounded up to 100 %
		{1, 3, "33.33 %"},
	}
	for _, tt := range tests {
		if got := fmtPercent(tt.ok, tt.all); got != tt.want {
			t.Errorf("fmtPercent(%d, %d) = %q, want %q", tt.ok, tt.all, got, tt.want)
		}
	}
}

func TestPartsFlags(t *testing.T) {
	tests := []struct {
		args                          []string
		wantErr                       string
		saturation, fixed, instances  bool
		rateAlice, rateCarol, maxWork int
	}{
		{args: nil, saturation: true, fixed: true, instances: true, rateAlice: 3000, rateCarol: 100, maxWork: 2000},
		{args: []string{"-only", "fixed", "-rate-alice", "1000", "-rate-carol", "50"}, fixed: true, rateAlice: 1000, rateCarol: 50, maxWork: 2000},
		{args: []string{"-only", "instances", "-instances=false"}, instances: true, rateAlice: 3000, rateCarol: 100, maxWork: 2000},
		{args: []string{"-only", "saturation"}, saturation: true, rateAlice: 3000, rateCarol: 100, maxWork: 2000},
		{args: []string{"-fixed-rate=false", "-instances=false"}, saturation: true, rateAlice: 3000, rateCarol: 100, maxWork: 2000},
		{args: []string{"-only", "fast"}, wantErr: "-only"},
		{args: []string{"-rate-carol", "0"}, wantErr: "-rate-carol"},
		{args: []string{"-max-in-flight", "0"}, wantErr: "-max-in-flight"},
	}
	for _, tt := range tests {
		cfg, err := parseFlags(tt.args, io.Discard)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseFlags(%q): error %v, want one naming %s", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseFlags(%q): %v", tt.args, err)
			continue
		}
		pc := cfg.parts
		got := []bool{pc.runs("saturation"), pc.runs("fixed"), pc.runs("instances")}
		if !slices.Equal(got, []bool{tt.saturation, tt.fixed, tt.instances}) {
			t.Errorf("parseFlags(%q): runs saturation, fixed, instances = %v, want %v", tt.args, got, []bool{tt.saturation, tt.fixed, tt.instances})
		}
		if pc.rateAlice != tt.rateAlice || pc.rateCarol != tt.rateCarol || pc.maxWorkers != tt.maxWork {
			t.Errorf("parseFlags(%q): rates %d, %d, max in flight %d", tt.args, pc.rateAlice, pc.rateCarol, pc.maxWorkers)
		}
		if pc.rate(cases[0]) != tt.rateAlice || pc.rate(cases[3]) != tt.rateCarol {
			t.Errorf("parseFlags(%q): rate of alice's case %d, of carol's %d", tt.args, pc.rate(cases[0]), pc.rate(cases[3]))
		}
	}
}

// TestAttack runs vegeta against a local server: every request carries the
// session headers and is counted as answered; no timing is asserted.
func TestAttack(t *testing.T) {
	var hits, bad atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("X-Bench-User") != "carol" {
			bad.Add(1)
			http.Error(w, `{"error":"no session"}`, http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	client, closeIdle := attackClient(50)
	defer closeIdle()
	at := attackSpec{url: srv.URL + "/api/me", headers: []string{"Authorization: Bearer tok", "X-Bench-User: carol"},
		rate: 200, duration: 200 * time.Millisecond, maxWorkers: 50}
	samples, err := attack(context.Background(), client, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) == 0 || int64(len(samples)) != hits.Load() || bad.Load() != 0 {
		t.Fatalf("%d samples, %d requests served, %d without the headers; want as many samples as requests, all with them", len(samples), hits.Load(), bad.Load())
	}
	seqs := map[uint64]bool{}
	for _, s := range samples {
		if !s.ok || s.err != "" || s.latency <= 0 || s.sent.IsZero() || seqs[s.seq] {
			t.Fatalf("sample %+v: want ok, a latency, a send time and a new seq", s)
		}
		seqs[s.seq] = true
	}
	if r := summarize(samples, at.rate); r.okCount != r.requests {
		t.Errorf("summarize: %d of %d ok", r.okCount, r.requests)
	}

	// Every request refused: a broken setup, an error, not a table row.
	at.headers = []string{"Authorization: Bearer other"}
	if _, err := attack(context.Background(), client, at); err == nil || !strings.Contains(err.Error(), "every request failed") {
		t.Errorf("all 401: err = %v, want every request failed", err)
	}
	at.headers = []string{"no colon"}
	if _, err := attack(context.Background(), client, at); err == nil {
		t.Errorf("bad header: no error")
	}
}
