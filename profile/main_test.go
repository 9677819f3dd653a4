package profile_test

import (
	"os"
	"testing"

	"github.com/profilecache/profilecache/internal/redistest"
)

// TestMain stops the Redis Cluster that the service tests share (see
// redistest.Targets) when the tests are done.
func TestMain(m *testing.M) { os.Exit(redistest.RunTests(m)) }
