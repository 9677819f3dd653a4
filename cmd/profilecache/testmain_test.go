package main

import (
	"os"
	"testing"

	"github.com/profilecache/profilecache/internal/redistest"
)

// runMainEnv makes the test binary run main() itself, so that tests can
// check what the real program prints and how it exits (startup_test.go).
const runMainEnv = "PROFILECACHE_TEST_RUN_MAIN"

// TestMain stops the Redis Cluster that the end-to-end suite shares (see
// redistest.Targets) when the tests are done.
func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(redistest.RunTests(m))
}
