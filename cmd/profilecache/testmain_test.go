package main

import (
	"fmt"
	"os"
	"testing"

	"github.com/profilecache/profilecache/internal/openapitest"
	"github.com/profilecache/profilecache/internal/redistest"
)

// runMainEnv makes the test binary run main() itself, so that tests can
// check what the real program prints and how it exits (startup_test.go).
const runMainEnv = "PROFILECACHE_TEST_RUN_MAIN"

// TestMain stops the Redis Cluster that the end-to-end suite shares (see
// redistest.Targets) when the tests are done, and with -v says how many
// responses were held to docs/openapi.yaml.
func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	code := redistest.RunTests(m)
	if testing.Verbose() {
		fmt.Println(openapitest.Report())
	}
	os.Exit(code)
}
