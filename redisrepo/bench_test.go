package redisrepo_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
)

// clients names the two ways to read: through the client-side cache (a hot
// key costs no round trip) and without it (every read asks Redis).
func clients(e env) []struct {
	name   string
	client rueidis.Client
} {
	return []struct {
		name   string
		client rueidis.Client
	}{{"cached", e.client}, {"uncached", e.raw}}
}

func BenchmarkTokenLookup(b *testing.B) {
	e := newEnv(b)
	uid := uuid.New()
	mustCreate(b, redisrepo.NewTokenStore(e.client, redisrepo.TokenOptions{}), newSession(uid, "s1", time.Now()), time.Hour)
	for _, c := range clients(e) {
		b.Run(c.name, func(b *testing.B) {
			s := redisrepo.NewTokenStore(c.client, redisrepo.TokenOptions{})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Lookup(ctx, uid, "s1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// carol has 10,000 orders; a page deep in the list costs LRANGE's walk.
func BenchmarkReadOrdersPage(b *testing.B) {
	e := newEnv(b)
	uid := uuid.New()
	mustSave(b, newProfileStore(e.client, redisrepo.ProfileOptions{}), carol(uid, 10_000))
	for _, c := range clients(e) {
		for _, offset := range []int{0, 5000} {
			b.Run(c.name+"/offset="+strconv.Itoa(offset), func(b *testing.B) {
				s := newProfileStore(c.client, redisrepo.ProfileOptions{})
				q := profile.Query{Orders: page(offset, 20)}
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					v, err := s.Read(ctx, uid, q)
					if err != nil || len(v.Orders.Items) != 20 {
						b.Fatalf("Read = %d orders, %v", len(v.Orders.Items), err)
					}
				}
			})
		}
	}
}

// BenchmarkSave replaces carol's whole profile: 10,000 orders plus the rest,
// written in bounded batches, then the previous generation deleted in
// bounded batches.
func BenchmarkSave(b *testing.B) {
	e := newEnv(b)
	s := newProfileStore(e.client, redisrepo.ProfileOptions{})
	uid := uuid.New()
	p := carol(uid, 10_000)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Save(ctx, p, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWakeUp measures the wake-up delay of a reload waiter (issue 12):
// from the moment the lock owner starts its release until WaitUnlocked
// returns, woken by the lock key's invalidation, against polling every
// 20 ms (a store without Wakeups). Reported as wake-µs/op (mean) and
// p50/p99 wake-µs; ns/op includes the setup of each round.
func BenchmarkWakeUp(b *testing.B) {
	srv := redistest.Start(b)
	for _, mode := range []string{"invalidation", "poll-20ms"} {
		b.Run(mode, func(b *testing.B) {
			var wake *redisrepo.Wakeups
			client := srv.Client(b)
			if mode == "invalidation" {
				wake = redisrepo.NewWakeups()
				client = srv.Client(b, func(o *rueidis.ClientOption) { o.OnInvalidations = wake.OnInvalidations })
			}
			waiter := redisrepo.NewProfileStore(client, redisrepo.ProfileOptions{Wakeups: wake})
			owner := redisrepo.NewProfileStore(srv.Client(b), redisrepo.ProfileOptions{})
			ctx := context.Background()
			var delays []time.Duration
			for b.Loop() {
				uid := uuid.New()
				release, ok, err := owner.TryLock(ctx, uid, time.Minute)
				if err != nil || !ok {
					b.Fatal(ok, err)
				}
				woke := make(chan time.Time, 1)
				go func() {
					if err := waiter.WaitUnlocked(ctx, uid); err != nil {
						b.Error(err)
					}
					woke <- time.Now()
				}()
				time.Sleep(5 * time.Millisecond) // the waiter is waiting
				start := time.Now()
				if err := release(ctx); err != nil {
					b.Fatal(err)
				}
				delays = append(delays, (<-woke).Sub(start))
			}
			slices.Sort(delays)
			var sum time.Duration
			for _, d := range delays {
				sum += d
			}
			us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
			b.ReportMetric(us(sum/time.Duration(len(delays))), "wake-µs/op")
			b.ReportMetric(us(delays[len(delays)/2]), "p50-wake-µs")
			b.ReportMetric(us(delays[len(delays)*99/100]), "p99-wake-µs")
		})
	}
}
