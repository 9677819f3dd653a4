package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/auth"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
	"github.com/profilecache/profilecache/web"
)

// app is the wired service: everything main serves, and what to close.
type app struct {
	Handler http.Handler
	Profile *profile.Service
	close   func()
}

func (a *app) Close() { a.close() }

// newApp builds the service from cfg. It is what main runs and what the
// end-to-end test drives, minus flag parsing and the listener.
func newApp(ctx context.Context, cfg Config, logger *slog.Logger) (*app, error) {
	var client rueidis.Client
	closeRedis := func() {}
	if cfg.RedisURL == "" {
		c, stop, err := redisrepo.StartEmbedded()
		if err != nil {
			return nil, fmt.Errorf("start embedded redis: %w", err)
		}
		client, closeRedis = c, stop
		logger.Warn("REDIS_URL is not set: using an EMBEDDED IN-MEMORY Redis. All sessions and cached profiles are LOST when the process exits; set REDIS_URL for a real server")
	} else {
		c, err := redisrepo.NewClient(cfg.RedisURL, cfg.RedisTimeout)
		if err != nil {
			return nil, err
		}
		client, closeRedis = c, c.Close
		logger.Info("redis connected", "mode", client.Mode(), "nodes", len(client.Nodes()))
	}

	secret := cfg.Secret
	if secret == nil {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret) // never fails (crypto/rand docs)
		logger.Warn("SESSION_SECRET is not set: using a random key for this process. Sessions end when it restarts, and several instances cannot share sessions")
	}
	var previous [][]byte
	if cfg.PreviousSecret != nil {
		previous = append(previous, cfg.PreviousSecret)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	backendLoads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "profilecache_backend_loads_total",
		Help: "Full profile loads from the backend (CRM), by result.",
	}, []string{"result"})
	backendLoadSeconds := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "profilecache_backend_load_duration_seconds",
		Help:    "Duration of full profile loads from the backend.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	})
	lockWaitSeconds := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "profilecache_reload_lock_wait_seconds",
		Help:    "Time requests waited for a reload run by another request or instance.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	})
	reg.MustRegister(backendLoads, backendLoadSeconds, lockWaitSeconds)
	for _, r := range []string{"ok", "error"} {
		backendLoads.WithLabelValues(r) // export zeros before the first load
	}

	store := redisrepo.NewProfileStore(client, redisrepo.ProfileOptions{TTL: cfg.ProfileTTL, Logger: logger})
	tokens := redisrepo.NewTokenStore(client, redisrepo.TokenOptions{IndexTTL: cfg.SessionMaxAge})
	svc := profile.NewService(profile.NewMockBackend(cfg.BackendLatency), store, store, profile.Options{
		BackendTimeout: cfg.BackendTimeout,
		Logger:         logger,
		OnBackendLoad: func(d time.Duration, err error) {
			result := "ok"
			if err != nil {
				result = "error"
			}
			backendLoads.WithLabelValues(result).Inc()
			backendLoadSeconds.Observe(d.Seconds())
		},
		OnLockWait: func(d time.Duration) { lockWaitSeconds.Observe(d.Seconds()) },
	})
	mgr, err := auth.New(auth.Config{
		Tokens:          tokens,
		Secret:          secret,
		PreviousSecrets: previous,
		CookieSecure:    cfg.CookieSecure,
		TokenTTL:        cfg.TokenTTL,
		MaxAge:          cfg.SessionMaxAge,
		Logger:          logger,
	})
	if err != nil {
		closeRedis()
		return nil, err
	}
	srv, err := web.New(web.Config{
		Profiles:         svc,
		Sessions:         mgr,
		Data:             tokens,
		Authenticate:     mgr.Middleware(),
		Ready:            func(ctx context.Context) error { return redisrepo.Ping(ctx, client) },
		Metrics:          promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Logger:           logger,
		LoginRate:        cfg.LoginRate,
		LoginBurst:       cfg.LoginBurst,
		CSRFCookieSecure: cfg.CookieSecure,
	})
	if err != nil {
		closeRedis()
		return nil, fmt.Errorf("web: %w", err)
	}
	logger.Info("config",
		"addr", cfg.Addr, "redis", redactURL(cfg.RedisURL), "session_secret", "[masked]",
		"cookie_secure", cfg.CookieSecure, "backend_latency", cfg.BackendLatency.String(),
		"token_ttl", cfg.TokenTTL.String(), "session_max_age", cfg.SessionMaxAge.String(), "profile_ttl", cfg.ProfileTTL.String())
	return &app{Handler: srv.Handler(), Profile: svc, close: closeRedis}, nil
}
