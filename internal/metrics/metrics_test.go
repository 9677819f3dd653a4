package metrics_test

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/profilecache/profilecache/internal/metrics"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestZerosBeforeFirstEvent(t *testing.T) {
	text := scrape(t, metrics.New())
	for _, want := range []string{
		`profilecache_token_validations_total{outcome="forged"} 0`,
		`profilecache_token_validations_total{outcome="ok"} 0`,
		`profilecache_redis_errors_total{kind="timeout"} 0`,
		`profilecache_redis_client_cache_total{result="hit"} 0`,
		`profilecache_backend_loads_total{result="error"} 0`,
		`go_goroutines `,
		`process_cpu_seconds_total `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

func TestObservations(t *testing.T) {
	m := metrics.New()
	m.ObserveRequest("/api/sessions/:id", "DELETE", 204, 3*time.Millisecond)
	m.ObserveRequest("/api/sessions/:id", "DELETE", 204, time.Millisecond)
	m.ObserveRequest("/api/sessions/:id", "DELETE", 404, time.Millisecond)
	m.ObserveRequest("/api/sessions/:id", "GET", 204, time.Millisecond)
	m.ObserveRequest("/api/me", "DELETE", 204, time.Millisecond)
	m.BackendLoad(time.Second, nil)
	m.BackendLoad(time.Second, errors.New("x"))
	m.LockWait(time.Millisecond)
	m.TokenValidation("forged")
	m.TokenValidation("forged")
	m.RedisError("network")
	m.RedisCache(true)
	m.RedisCache(false)
	m.RedisCache(true)
	m.BackendRequest("orders", "503", time.Millisecond)
	m.BackendRetry("orders")
	text := scrape(t, m)
	for _, want := range []string{
		`profilecache_http_request_duration_seconds_count{code="204",method="DELETE",route="/api/sessions/:id"} 2`,
		`profilecache_http_request_duration_seconds_count{code="404",method="DELETE",route="/api/sessions/:id"} 1`,
		`profilecache_http_request_duration_seconds_count{code="204",method="GET",route="/api/sessions/:id"} 1`,
		`profilecache_http_request_duration_seconds_count{code="204",method="DELETE",route="/api/me"} 1`,
		`profilecache_backend_loads_total{result="ok"} 1`,
		`profilecache_backend_loads_total{result="error"} 1`,
		`profilecache_backend_load_duration_seconds_count 2`,
		`profilecache_reload_lock_wait_seconds_count 1`,
		`profilecache_token_validations_total{outcome="forged"} 2`,
		`profilecache_redis_errors_total{kind="network"} 1`,
		`profilecache_redis_client_cache_total{result="hit"} 2`,
		`profilecache_redis_client_cache_total{result="miss"} 1`,
		`profilecache_backend_http_request_duration_seconds_count{endpoint="orders",outcome="503"} 1`,
		`profilecache_backend_http_retries_total{endpoint="orders"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}
