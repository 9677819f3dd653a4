package main

import (
	"strings"
	"testing"
	"time"
)

// A real `wrk -t 2 -c 4 -d 1s --latency` summary (wrk 4.1.0, Debian).
const wrkNotFound = `Running 1s test @ http://127.0.0.1:18777/nonexistent
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.89ms    1.11ms  17.03ms   90.49%
    Req/Sec     1.07k   298.72     2.32k    95.24%
  Latency Distribution
     50%    1.78ms
     75%    2.16ms
     90%    2.58ms
     99%    5.49ms
  2238 requests in 1.10s, 1.11MB read
  Non-2xx or 3xx responses: 2238
Requests/sec:   2035.67
Transfer/sec:      1.01MB
`

const wrkSocketErrors = `Running 10s test @ http://127.0.0.1:8080/api/me
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   850.12us  400.00us  30.00ms   80.00%
    Req/Sec    37.21k     2.10k   41.00k    70.00%
  Latency Distribution
     50%  790.00us
     75%    1.02ms
     90%    1.30ms
     99%    2.51s
  740123 requests in 10.00s, 300.12MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
Requests/sec:  74012.30
Transfer/sec:     30.01MB
`

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want wrkResult
	}{
		{"non-2xx", wrkNotFound, wrkResult{requests: 2238, reqPerSec: 2035.67,
			p50: 1780 * time.Microsecond, p99: 5490 * time.Microsecond, non2xx: 2238}},
		{"socket errors, us and s units", wrkSocketErrors, wrkResult{requests: 740123, reqPerSec: 74012.30,
			p50: 790 * time.Microsecond, p99: 2510 * time.Millisecond, sockErrs: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWrk(tt.out)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("parseWrk = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseWrkWithoutLatency(t *testing.T) {
	// Without --latency there is no distribution: an error, not zeros.
	var lines []string
	for _, l := range strings.Split(wrkNotFound, "\n") {
		if !strings.Contains(l, "%    ") {
			lines = append(lines, l)
		}
	}
	if _, err := parseWrk(strings.Join(lines, "\n")); err == nil {
		t.Error("parseWrk without the latency distribution = nil error, want one")
	}
}

func TestParseWrkDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"790.00us", 790 * time.Microsecond},
		{"1.02ms", 1020 * time.Microsecond},
		{"2.51s", 2510 * time.Millisecond},
		{"1.50m", 90 * time.Second},
	}
	for _, tt := range tests {
		got, err := parseWrkDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseWrkDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "12", "1.0xs", "ms"} {
		if _, err := parseWrkDuration(bad); err == nil {
			t.Errorf("parseWrkDuration(%q) = nil error, want one", bad)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	// utime 250 and stime 50 ticks of 10 ms; the name has a space and a ')'.
	stat := "4242 (my serv)er) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1000 123456 789"
	got, err := parseStatCPU(stat)
	if want := 3 * time.Second; err != nil || got != want {
		t.Errorf("parseStatCPU = %v, %v; want %v", got, err, want)
	}
	if _, err := parseStatCPU("4242 (x) S 1 2"); err == nil {
		t.Error("parseStatCPU of a short line = nil error, want one")
	}
}
