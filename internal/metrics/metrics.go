// Package metrics holds profilecache's Prometheus metrics in one registry.
// The packages that observe something take plain hook functions (web's
// request observer, profile.Options, auth.Config.OnValidate, redisrepo's
// Instrument hooks, crm.Config); cmd connects those hooks to the methods
// here, so that no domain or adapter package imports Prometheus.
//
// Every label has a bounded set of values: route templates (never raw
// paths), methods, status codes, fixed outcome names.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "profilecache"

// Token validation outcomes, as auth reports them. Listed here so that each
// is exported as 0 before it first happens.
var tokenOutcomes = []string{"ok", "missing", "expired", "revoked", "forged", "invalid", "error"}

// Redis error kinds, as redisrepo reports them.
var redisErrorKinds = []string{"timeout", "network", "server"}

// Metrics is the registry and every metric profilecache exports. It is safe
// for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests       *prometheus.HistogramVec
	backendLoads       *prometheus.CounterVec
	backendLoadSeconds prometheus.Histogram
	lockWaitSeconds    prometheus.Histogram
	tokenValidations   *prometheus.CounterVec
	redisErrors        *prometheus.CounterVec
	redisCache         *prometheus.CounterVec
	redisRoundTrips    prometheus.Histogram
	backendRequests    *prometheus.HistogramVec
	backendRetries     *prometheus.CounterVec
	sectionReloads     *prometheus.CounterVec
	staleSections      *prometheus.CounterVec
	readWaits          *prometheus.CounterVec

	// Resolved once: these run several times per request, and a label
	// lookup costs a hash and a lock each time.
	cacheHit, cacheMiss prometheus.Counter
	tokenOutcome        map[string]prometheus.Counter
	requestObservers    sync.Map // requestLabels -> prometheus.Observer
}

// latencyBuckets span 0.5 ms to about 16 s.
var latencyBuckets = prometheus.ExponentialBuckets(0.0005, 2, 16)

// New registers every metric, plus the Go runtime and process collectors,
// in a fresh registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		httpRequests: histogramVec("http_request_duration_seconds",
			"HTTP requests by route template (unmatched for no route), method and status code.",
			latencyBuckets, "route", "method", "code"),
		backendLoads: counterVec("backend_loads_total",
			"Full profile loads from the backend (CRM), by result.",
			"result"),
		backendLoadSeconds: histogram("backend_load_duration_seconds",
			"Duration of full profile loads from the backend, saving included.",
			prometheus.ExponentialBuckets(0.001, 2, 15)),
		lockWaitSeconds: histogram("reload_lock_wait_seconds",
			"Time requests waited for a reload run by another request or instance.",
			prometheus.ExponentialBuckets(0.001, 2, 15)),
		tokenValidations: counterVec("token_validations_total",
			"Session credential checks by outcome: ok, missing (anonymous), expired (JWT or session past its maximum age), revoked (session gone: logout, revoke or idle expiry), forged (bad signature or unknown key), invalid (malformed), error (session store down).",
			"outcome"),
		redisErrors: counterVec("redis_errors_total",
			"Failed Redis commands by kind: timeout, network, server (an error reply). Nil replies are not errors.",
			"kind"),
		redisCache: counterVec("redis_client_cache_total",
			"Reads through the client-side cache by result: hit (served locally) or miss (sent to Redis).",
			"result"),
		redisRoundTrips: histogram("redis_round_trip_duration_seconds",
			"Calls that went to Redis (a command, a pipeline, the misses of a cached read), failed or not, from send to reply. Cache hits are not counted.",
			prometheus.ExponentialBuckets(0.0001, 2, 16)),
		backendRequests: histogramVec("backend_http_request_duration_seconds",
			"Attempts of HTTP requests to the CRM by endpoint and outcome (status code, timeout or error).",
			latencyBuckets, "endpoint", "outcome"),
		backendRetries: counterVec("backend_http_retries_total",
			"Retries of HTTP requests to the CRM by endpoint.",
			"endpoint"),
		sectionReloads: counterVec("section_reloads_total",
			"Reloads of one profile section (PROFILE_FRESH) that took the section's lock, by section and outcome: ok, error (backend or Redis failed; retried after a backoff), superseded (something newer happened meanwhile: nothing written), fenced (every session ended meanwhile), skipped (another instance had reloaded it).",
			"section", "outcome"),
		staleSections: counterVec("stale_sections_total",
			"Profile sections served past their freshness window (the Profile-Stale header), by section.",
			"section"),
		readWaits: counterVec("read_waits_total",
			"Profile reads that waited for the backend, by reason: miss (a part was not cached), stale_max (a section was older than PROFILE_STALE_MAX).",
			"reason"),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpRequests, m.backendLoads, m.backendLoadSeconds, m.lockWaitSeconds, m.tokenValidations,
		m.redisErrors, m.redisCache, m.redisRoundTrips, m.backendRequests, m.backendRetries,
		m.sectionReloads, m.staleSections, m.readWaits,
	)
	m.resolve()
	return m
}

// resolve exports zeros before the first event, so that rate() and alerts
// work from the start, and resolves the labels the hot path uses.
func (m *Metrics) resolve() {
	for _, r := range []string{"miss", "stale_max"} {
		m.readWaits.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "error"} {
		m.backendLoads.WithLabelValues(r)
	}
	m.tokenOutcome = make(map[string]prometheus.Counter, len(tokenOutcomes))
	for _, o := range tokenOutcomes {
		m.tokenOutcome[o] = m.tokenValidations.WithLabelValues(o)
	}
	for _, k := range redisErrorKinds {
		m.redisErrors.WithLabelValues(k)
	}
	m.cacheHit, m.cacheMiss = m.redisCache.WithLabelValues("hit"), m.redisCache.WithLabelValues("miss")
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
}

func histogram(name, help string, buckets []float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets})
}

func histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels)
}

// Registry is the registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ObserveRequest records one HTTP request. route must be a route template
// or "unmatched", never a raw path.
func (m *Metrics) ObserveRequest(route, method string, status int, d time.Duration) {
	k := requestLabels{route, method, status}
	o, ok := m.requestObservers.Load(k)
	if !ok {
		// The label sets are bounded (routes × methods × codes), so the map is.
		o, _ = m.requestObservers.LoadOrStore(k, m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

type requestLabels struct {
	route, method string
	status        int
}

// BackendLoad records one full profile load (profile.Options.OnBackendLoad).
func (m *Metrics) BackendLoad(d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.backendLoads.WithLabelValues(result).Inc()
	m.backendLoadSeconds.Observe(d.Seconds())
}

// LockWait records one wait for another owner's reload
// (profile.Options.OnLockWait).
func (m *Metrics) LockWait(d time.Duration) { m.lockWaitSeconds.Observe(d.Seconds()) }

// TokenValidation records one session token check (auth.Config.OnValidate).
func (m *Metrics) TokenValidation(outcome string) {
	if c, ok := m.tokenOutcome[outcome]; ok {
		c.Inc()
		return
	}
	m.tokenValidations.WithLabelValues(outcome).Inc()
}

// RedisError records one failed Redis command.
func (m *Metrics) RedisError(kind string) { m.redisErrors.WithLabelValues(kind).Inc() }

// RedisRoundTrip observes one call that went to Redis.
func (m *Metrics) RedisRoundTrip(d time.Duration) { m.redisRoundTrips.Observe(d.Seconds()) }

// RedisCache records one read through the client-side cache.
func (m *Metrics) RedisCache(hit bool) {
	if hit {
		m.cacheHit.Inc()
		return
	}
	m.cacheMiss.Inc()
}

// BackendRequest records one attempt of a CRM request (crm.Config.OnRequest).
func (m *Metrics) BackendRequest(endpoint, outcome string, d time.Duration) {
	m.backendRequests.WithLabelValues(endpoint, outcome).Observe(d.Seconds())
}

// BackendRetry records one retry of a CRM request (crm.Config.OnRetry).
func (m *Metrics) BackendRetry(endpoint string) { m.backendRetries.WithLabelValues(endpoint).Inc() }

// SectionReload records one section reload (profile.Options.OnSectionReload).
func (m *Metrics) SectionReload(section, outcome string) {
	m.sectionReloads.WithLabelValues(section, outcome).Inc()
}

// StaleSection records one section served past its window
// (profile.Options.OnStale).
func (m *Metrics) StaleSection(section string) { m.staleSections.WithLabelValues(section).Inc() }

// ReadWait records one read that waited for the backend
// (profile.Options.OnReadWait).
func (m *Metrics) ReadWait(reason string) { m.readWaits.WithLabelValues(reason).Inc() }
