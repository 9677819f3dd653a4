package main

import (
	"strings"
	"testing"
	"time"
)

// infoText is INFO stats, cpu and memory as redis-server 7.0 answers them
// (abridged), CRLF line ends included.
const infoText = "# Stats\r\ntotal_connections_received:12\r\ntotal_commands_processed:123456\r\n" +
	"total_net_input_bytes:999\r\ntotal_net_output_bytes:7654321\r\ntracking_total_keys:25\r\n" +
	"tracking_total_items:50\r\ntracking_total_prefixes:0\r\n\r\n# CPU\r\nused_cpu_sys:1.250000\r\n" +
	"used_cpu_user:0.500125\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\n" +
	"used_cpu_sys_main_thread:1.200000\r\n\r\n# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n" +
	"used_memory_rss:5000000\r\n"

func TestParseSnap(t *testing.T) {
	s, err := parseSnap(infoText)
	if err != nil {
		t.Fatal(err)
	}
	want := redisSnap{cpu: 1750125 * time.Microsecond, commands: 123456, netOut: 7654321, usedMemory: 1048576, trackKeys: 25, trackItems: 50}
	if s != want {
		t.Errorf("parseSnap = %+v, want %+v", s, want)
	}

	// A section missing (e.g. only INFO stats asked for) is an error, not zeros.
	if _, err := parseSnap(strings.Split(infoText, "# CPU")[0]); err == nil {
		t.Error("parseSnap without the cpu and memory sections: no error")
	}
	if _, err := parseSnap(strings.Replace(infoText, "used_memory:1048576", "used_memory:lots", 1)); err == nil {
		t.Error("parseSnap of used_memory:lots: no error")
	}
}

func TestRedisSnapSub(t *testing.T) {
	a := redisSnap{cpu: time.Second, commands: 10, netOut: 100, usedMemory: 1000, trackKeys: 3, trackItems: 6}
	b := redisSnap{cpu: 3 * time.Second, commands: 15, netOut: 160, usedMemory: 900, trackKeys: 2, trackItems: 2}
	want := redisSnap{cpu: 2 * time.Second, commands: 5, netOut: 60, usedMemory: -100, trackKeys: -1, trackItems: -4}
	if got := b.sub(a); got != want {
		t.Errorf("sub = %+v, want %+v", got, want)
	}
	if got := addSnap(a, want); got != b {
		t.Errorf("addSnap = %+v, want %+v", got, b)
	}
}

func instRuns(n int, rps ...float64) []instRun {
	var out []instRun
	for _, x := range rps {
		out = append(out, instRun{n: n, requests: int64(x * 10), reqPerSec: x, p99: 20 * time.Millisecond,
			srvCPU: 50 * time.Microsecond, redisCPU: 200 * time.Nanosecond, cmdsPerReq: 0.0002, trackKeys: 3, trackItems: 3 * int64(n)})
	}
	return out
}

func TestInstRatio(t *testing.T) {
	// Round 2 slow for both: per round 1.1, 1.1, 0.5 → 1.1; the medians'
	// ratio would be 11000 / 10000 = 1.1 here too, the means' 0.93.
	one := instRuns(1, 10000, 4000, 20000)
	two := instRuns(2, 11000, 4400, 10000)
	if got := instRatio(one, two); got < 1.0999 || got > 1.1001 {
		t.Errorf("instRatio = %v, want 1.1", got)
	}
	agg := aggregateInst(two)
	if agg.reqPerSec != 10000 || agg.requests != 254000 || agg.n != 2 || agg.trackItems != 6 {
		t.Errorf("aggregateInst = %+v, want the median req/s 10000, 254000 requests in all, n 2, 6 items", agg)
	}
}

func TestPrintInstancesTable(t *testing.T) {
	ir := &instResults{
		cfg:  config{rounds: 1, warmup: time.Second, load: load{threads: 2, conns: 64, duration: 3 * time.Second}},
		one:  instRuns(1, 10000),
		two:  instRuns(2, 9000),
		load: [2]string{"1", "2"},
		writes: []writeRun{
			{n: 1, writes: 20, cmds: 95, cpu: 900 * time.Microsecond, dropped: 23, outBytes: 3300, rereadCmds: 115, rereadCPU: 450 * time.Microsecond},
			{n: 2, writes: 20, cmds: 95, cpu: 1000 * time.Microsecond, dropped: 46, outBytes: 5500, rereadCmds: 230, rereadCPU: 900 * time.Microsecond},
		},
		tracking: trackingCost{keys: 5000, perKey: 107.4, perItem: 72.2, missCmds: 5, missCPU: 4500 * time.Nanosecond},
	}
	var b strings.Builder
	printInstancesTable(&b, ir)
	out := b.String()
	want := []string{
		"wrk -t2 -c64 in all (split evenly over the instances)",
		"| 1 | 10,000 | 1.00 | 20.00 ms | 0.0002 | 0.200 | 50 | 3, 3 | 0 |",
		"| 2 | 9,000 | 0.90 | 20.00 ms | 0.0002 | 0.200 | 50 | 3, 6 | 0 |",
		"| 1 instance caching, mean of 20 | 95 | 900 | 23.0 | 3,300 | 115.0, 450 |",
		"| 2 instances caching, mean of 20 | 95 | 1000 | 46.0 | 5,500 | 230.0, 900 |",
		"5,000 of carol's order hashes through the cache, 500 a batch): 107 bytes per tracked key, 72 bytes per further client tracking it; each key read cost Redis 5.0 commands and 4.5 µs of CPU",
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("printInstancesTable: no %q in\n%s", w, out)
		}
	}
}
