package redisrepo_test

import (
	"os"
	"testing"

	"github.com/profilecache/profilecache/internal/redistest"
)

// TestMain stops the Redis Cluster that the storage suite shares (see
// onTargets) when the tests are done.
func TestMain(m *testing.M) { os.Exit(redistest.RunTests(m)) }
