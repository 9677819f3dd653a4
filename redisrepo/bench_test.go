package redisrepo_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

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
