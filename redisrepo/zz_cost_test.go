package redisrepo_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/redisrepo"
)

func TestZZCost(t *testing.T) {
	srv := redistest.Start(t)
	e := newEnvOn(t, srv)
	s := newProfileStore(e.client, redisrepo.ProfileOptions{})
	uid := uuid.New()
	p := carol(uid, 10000)
	mustSave(t, s, p)
	ctx := context.Background()
	for range 4 {
		e.raw.Do(ctx, e.raw.B().Arbitrary("CONFIG", "RESETSTAT").Build())
		start := time.Now()
		mustSave(t, s, p)
		wall := time.Since(start)
		info, _ := e.raw.Do(ctx, e.raw.B().Info().Section("commandstats").Build()).ToString()
		t.Logf("save wall %v", wall)
		for _, l := range strings.Split(info, "\r\n") {
			if strings.HasPrefix(l, "cmdstat_") && !strings.Contains(l, "cmdstat_info") && !strings.Contains(l, "cmdstat_config") {
				t.Logf("  %s", l)
			}
		}
	}
}
