package main

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/auth"
	"github.com/profilecache/profilecache/internal/metrics"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/redisrepo"
	"github.com/profilecache/profilecache/web"
)

// app is the wired service: everything main serves, and what to close.
type app struct {
	Handler http.Handler
	Profile *profile.Service
	close   func()
	// flushTraces exports the ended spans now (tests); a no-op when
	// tracing is off.
	flushTraces func(context.Context) error
}

func (a *app) Close() { a.close() }

// deriveCSRFKey derives the CSRF token key from a session secret (HKDF-
// SHA256 with its own label): the JWT's signing key itself never signs
// anything else.
func deriveCSRFKey(secret []byte) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, secret, nil, "profilecache/web csrf v1", web.MinCSRFKeyLen)
	if err != nil {
		return nil, fmt.Errorf("derive CSRF key: %w", err)
	}
	return k, nil
}

// newApp builds the service from cfg. It is what main runs and what the
// end-to-end test drives, minus flag parsing and the listener.
func newApp(ctx context.Context, cfg Config, logger *slog.Logger) (*app, error) {
	var client rueidis.Client
	// Reload waiters are woken by invalidations (redisrepo/wake.go); the
	// embedded server has none, and they poll.
	var wakeups *redisrepo.Wakeups
	var closeRedis func()
	if cfg.RedisURL == "" {
		c, stop, err := redisrepo.StartEmbedded()
		if err != nil {
			return nil, fmt.Errorf("start embedded redis: %w", err)
		}
		client, closeRedis = c, stop
		logger.Warn("REDIS_URL is not set: using an EMBEDDED IN-MEMORY Redis. All sessions and cached profiles are LOST when the process exits; set REDIS_URL for a real server")
	} else {
		wakeups = redisrepo.NewWakeups()
		c, err := redisrepo.NewClient(cfg.RedisURL, cfg.RedisTimeout, redisrepo.WithSentinelPassword(cfg.RedisSentinelPassword),
			redisrepo.WithWakeups(wakeups))
		if err != nil {
			return nil, err
		}
		client, closeRedis = c, c.Close
		attrs := []any{"mode", client.Mode(), "nodes", len(client.Nodes())}
		if client.Mode() == rueidis.ClientModeSentinel {
			// The master the sentinels named at start; failovers are
			// followed silently (docs/scale.md#redis-sentinel).
			for addr := range client.Nodes() {
				attrs = append(attrs, "master", addr)
			}
		}
		logger.Info("redis connected", attrs...)
	}
	// Every Redis call without an earlier deadline gets REDIS_TIMEOUT: an
	// outage answers 503 in bounded time instead of hanging requests.
	client = redisrepo.WithTimeout(client, cfg.RedisTimeout)
	// One registry for every metric (internal/metrics); the Redis errors
	// counted include the timeouts WithTimeout imposes.
	m := metrics.New()
	tr, err := newTracing(ctx, logger)
	if err != nil {
		closeRedis()
		return nil, err
	}
	closeRedis = tr.closeAfter(closeRedis, logger)
	client = redisrepo.Instrument(client, redisrepo.Hooks{OnError: m.RedisError, OnCache: m.RedisCache, Tracer: tr.tracer})
	backend, err := newBackend(cfg, m, logger, tr.crmTransport())
	if err != nil {
		closeRedis()
		return nil, err
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
	// CSRF tokens get their own key, derived from the same secret, so that
	// every instance agrees on them and a rotation keeps them valid.
	csrfKey, err := deriveCSRFKey(secret)
	if err != nil {
		closeRedis()
		return nil, err
	}
	var csrfPrevious [][]byte
	for _, p := range previous {
		k, err := deriveCSRFKey(p)
		if err != nil {
			closeRedis()
			return nil, err
		}
		csrfPrevious = append(csrfPrevious, k)
	}

	// The embedded Redis has no replicas to wait for.
	waitReplicas := cfg.RedisWaitReplicas
	if cfg.RedisURL == "" {
		waitReplicas = 0
	} else if waitReplicas > 0 {
		logger.Info("logins wait for replicas to confirm their session", "replicas", waitReplicas, "at_most", cfg.RedisTimeout)
	}
	evs, err := newEvents(cfg, client, m, logger)
	if err != nil {
		closeRedis()
		return nil, err
	}
	store := redisrepo.NewProfileStore(client, redisrepo.ProfileOptions{TTL: cfg.ProfileTTL, Logger: logger, Wakeups: wakeups})
	tokens := redisrepo.NewTokenStore(client, redisrepo.TokenOptions{
		IndexTTL:     cfg.SessionMaxAge,
		FenceTTL:     cfg.fenceTTL(),
		MaxSessions:  cfg.MaxSessions,
		MaxDataBytes: cfg.SessionDataMaxBytes,
		WaitReplicas: waitReplicas,
		WaitTimeout:  cfg.RedisTimeout,
		Logger:       logger,
		Events:       evs.recorder,
	})
	svc := profile.NewService(backend, store, store, profile.Options{
		BackendTimeout:  cfg.BackendTimeout,
		RefreshCooldown: cfg.RefreshCooldown,
		Logger:          logger,
		OnBackendLoad:   m.BackendLoad,
		OnLockWait:      m.LockWait,
		Accounts:        tokens,
		Events:          evs.recorder,
		Fresh:           cfg.freshness(cfg.ProfileTTL),
		OnSectionReload: func(s profile.Section, outcome string, _ time.Duration) { m.SectionReload(s.String(), outcome) },
		OnStale:         func(s profile.Section) { m.StaleSection(s.String()) },
		OnReadWait:      m.ReadWait,
		Tracer:          tr.profileTracer(),
	})
	// Background section reloads end before Redis is closed.
	closeRedis = func(closeClient func()) func() {
		return func() { svc.Close(); closeClient() }
	}(closeRedis)
	// Login budgets in Redis, shared by every instance: pc:rl:{a:<address>}
	// and pc:rl:{e:<hashed email>}.
	byAddress, err := redisrepo.NewLimiter(client, redisrepo.LimiterOptions{Name: "a", Rate: cfg.LoginRate, Burst: cfg.LoginBurst})
	if err != nil {
		closeRedis()
		return nil, err
	}
	byAccount, err := redisrepo.NewLimiter(client, redisrepo.LimiterOptions{Name: "e", Rate: cfg.LoginAccountRate, Burst: cfg.LoginAccountBurst})
	if err != nil {
		closeRedis()
		return nil, err
	}
	mgr, err := auth.New(auth.Config{
		Tokens:          tokens,
		Secret:          secret,
		PreviousSecrets: previous,
		CookieSecure:    cfg.CookieSecure,
		SecureRequest:   secureRequest(cfg.TrustedProxies),
		TokenTTL:        cfg.TokenTTL,
		MaxAge:          cfg.SessionMaxAge,
		Logger:          logger,
		OnValidate:      m.TokenValidation,
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
		Metrics:          m.Handler(),
		ObserveRequest:   m.ObserveRequest,
		Changes:          svc,
		WebhookSecret:    cfg.WebhookSecret,
		Logger:           logger,
		LoginByAddress:   byAddress,
		LoginByAccount:   byAccount,
		CSRFCookieSecure: cfg.CookieSecure,
		SecureRequest:    secureRequest(cfg.TrustedProxies),
		CSRFKey:          csrfKey,
		CSRFPreviousKeys: csrfPrevious,
		IPExtractor:      ipExtractor(cfg.TrustedProxies),
		Tracer:           tr.tracer,
		Propagator:       tr.prop,
	})
	if err != nil {
		closeRedis()
		return nil, fmt.Errorf("web: %w", err)
	}
	logger.Info("config",
		"addr", cfg.Addr, "redis", redactURL(cfg.RedisURL), "redis_sentinel_password", cfg.RedisSentinelPassword != "", "session_secret", "[masked]",
		"cookie_secure", cfg.CookieSecure, "trusted_proxies", fmt.Sprint(cfg.TrustedProxies), "backend_latency", cfg.BackendLatency.String(),
		"token_ttl", cfg.TokenTTL.String(), "session_max_age", cfg.SessionMaxAge.String(), "profile_ttl", cfg.ProfileTTL.String(),
		"refresh_cooldown", cfg.RefreshCooldown.String(), "login_rate", cfg.LoginRate, "login_burst", cfg.LoginBurst,
		"login_account_rate", cfg.LoginAccountRate, "login_account_burst", cfg.LoginAccountBurst,
		"max_sessions_per_user", cfg.MaxSessions, "session_data_max_bytes", cfg.SessionDataMaxBytes,
		"backend", cfg.redactedBackend(), "backend_token", cfg.BackendToken != "", "webhook", cfg.WebhookSecret != "",
		"pprof", cfg.Pprof, "log_level", cfg.LogLevel.String(), "events", cfg.Events, "events_webhook", cfg.EventsWebhookURL != "",
		"read_timeout", cfg.ReadTimeout.String(), "write_timeout", cfg.WriteTimeout.String(),
		"profile_fresh", cfg.freshString(), "profile_stale_max", cfg.freshness(cfg.ProfileTTL).StaleMax.String())
	stopEvents := evs.start()
	return &app{Handler: srv.Handler(), Profile: svc, close: func() { stopEvents(); closeRedis() }, flushTraces: tr.forceFlush}, nil
}
