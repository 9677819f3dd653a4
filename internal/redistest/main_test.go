package redistest_test

import (
	"os"
	"testing"

	"github.com/profilecache/profilecache/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.RunTests(m)) }
