package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/auth"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// countingClient notes every round trip a rueidis client makes: a Do, a
// DoMulti (one pipelined batch) and every cache miss of DoCache and
// DoMultiCache.
type countingClient struct {
	rueidis.Client
	mu    sync.Mutex
	trips []string
}

func (c *countingClient) note(cmds ...[]string) {
	label := strings.Join(cmds[0], " ")
	switch {
	case len(cmds) > 1:
		label = fmt.Sprintf("%s … %s (%d commands)", cmds[0][0], cmds[len(cmds)-1][0], len(cmds))
	case strings.HasPrefix(strings.ToUpper(cmds[0][0]), "EVAL") && len(cmds[0]) > 2:
		label = fmt.Sprintf("%s (%s keys)", cmds[0][0], cmds[0][2]) // EVALSHA sha numkeys ...
	case slices.Contains([]string{"UNLINK", "DEL", "EXISTS", "MGET"}, strings.ToUpper(cmds[0][0])) && len(cmds[0]) > 2:
		label = fmt.Sprintf("%s (%d keys)", cmds[0][0], len(cmds[0])-1)
	case len(label) > 24:
		label = cmds[0][0]
	}
	c.mu.Lock()
	c.trips = append(c.trips, label)
	c.mu.Unlock()
}

func (c *countingClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	c.note(slices.Clone(cmd.Commands()))
	return c.Client.Do(ctx, cmd)
}

func (c *countingClient) DoMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	if len(cmds) > 0 {
		all := make([][]string, len(cmds))
		for i, cmd := range cmds {
			all[i] = slices.Clone(cmd.Commands())
		}
		c.note(all...)
	}
	return c.Client.DoMulti(ctx, cmds...)
}

// Commands are read before the call: rueidis recycles a command once sent.

func (c *countingClient) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	words := slices.Clone(cmd.Commands())
	r := c.Client.DoCache(ctx, cmd, ttl)
	if !r.IsCacheHit() {
		c.note(words)
	}
	return r
}

func (c *countingClient) DoMultiCache(ctx context.Context, multi ...rueidis.CacheableTTL) []rueidis.RedisResult {
	words := make([][]string, len(multi))
	for i, m := range multi {
		words[i] = slices.Clone(m.Cmd.Commands())
	}
	rs := c.Client.DoMultiCache(ctx, multi...)
	var missed [][]string
	for i, r := range rs {
		if !r.IsCacheHit() {
			missed = append(missed, words[i])
		}
	}
	if len(missed) > 0 {
		c.note(missed...)
	}
	return rs
}

// loginTrips logs carol in through profilecache's own packages, wired as
// cmd/profilecache wires them, with a client that counts round trips.
func loginTrips(ctx context.Context, redisAddr string) ([]string, error) {
	raw, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{redisAddr}})
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	c := &countingClient{Client: raw}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := redisrepo.NewProfileStore(c, redisrepo.ProfileOptions{Logger: log})
	svc := profile.NewService(profile.NewMockBackend(0), store, store, profile.Options{Logger: log})
	mgr, err := auth.New(auth.Config{
		Tokens: redisrepo.NewTokenStore(c, redisrepo.TokenOptions{}),
		Secret: []byte(strings.Repeat("x", auth.MinSecretLen)), Logger: log,
	})
	if err != nil {
		return nil, err
	}
	// Once before counting: the first call of a Lua script also loads it.
	for i := range 2 {
		c.mu.Lock()
		c.trips = nil
		c.mu.Unlock()
		id, fence, err := svc.Login(ctx, "carol@example.com", "carol-secret")
		if err != nil {
			return nil, fmt.Errorf("login %d: %w", i, err)
		}
		if _, err := mgr.Issue(ctx, id, fence, "bench"); err != nil {
			return nil, fmt.Errorf("issue %d: %w", i, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trips, nil
}
