package main

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// privateRedis is the harness's own redis-server and an admin client to it.
type privateRedis struct {
	addr  string
	rdb   *redis.Client
	child *child
}

// startRedis starts redis-server on addr with persistence off and waits
// until it answers.
func startRedis(ctx context.Context, p *procs, addr string) (*privateRedis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found: run `make bench`, which installs it")
	}
	port, err := portOf(addr)
	if err != nil {
		return nil, err
	}
	c, err := p.start("redis", bin, []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", p.dir, "--daemonize", "no",
	}, nil)
	if err != nil {
		return nil, err
	}
	r := &privateRedis{addr: addr, rdb: redis.NewClient(&redis.Options{Addr: addr}), child: c}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := c.failed(); err != nil {
			return nil, err
		}
		if err := r.rdb.Ping(ctx).Err(); err == nil {
			return r, nil
		} else if time.Now().After(deadline) {
			return nil, fmt.Errorf("redis-server on %s: no PONG within 10s: %w; its log ends:\n%s", addr, err, c.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *privateRedis) flushAll(ctx context.Context) error {
	return r.rdb.FlushAll(ctx).Err()
}

// info reads one numeric field of INFO section.
func (r *privateRedis) info(ctx context.Context, section, field string) (int64, error) {
	s, err := r.rdb.Info(ctx, section).Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(s, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO %s has no %s", section, field)
}

// commands is the server's total_commands_processed. Its own INFO call
// counts too, which the callers subtract.
func (r *privateRedis) commands(ctx context.Context) (int64, error) {
	return r.info(ctx, "stats", "total_commands_processed")
}

// keyBytes sums MEMORY USAGE (all samples: exact for lists and hashes) over
// the keys matching pattern for which keep returns true.
func (r *privateRedis) keyBytes(ctx context.Context, pattern string, keep func(string) bool) (bytes int64, keys int, err error) {
	it := r.rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for it.Next(ctx) {
		k := it.Val()
		if !keep(k) {
			continue
		}
		n, err := r.rdb.MemoryUsage(ctx, k, 0).Result()
		if err != nil {
			return 0, 0, fmt.Errorf("MEMORY USAGE %s: %w", k, err)
		}
		bytes += n
		keys++
	}
	return bytes, keys, it.Err()
}
