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
	r, err := newRedis(cfg, logger)
	if err != nil {
		return nil, err
	}
	tr, err := newTracing(ctx, logger)
	if err != nil {
		r.close()
		return nil, err
	}
	r.close = tr.closeAfter(r.close, logger)
	a, err := wireApp(cfg, r, tr, logger)
	if err != nil {
		r.close()
		return nil, err
	}
	return a, nil
}

// wireApp builds everything on top of Redis: the CRM, the event stream,
// the stores, the profile service and the HTTP handler.
func wireApp(cfg Config, r redisConn, tr *tracing, logger *slog.Logger) (*app, error) {
	// One registry for every metric (internal/metrics); the Redis errors
	// counted include the timeouts redisrepo.WithTimeout imposes.
	m := metrics.New()
	client := redisrepo.Instrument(r.client, redisrepo.Hooks{OnError: m.RedisError, OnCache: m.RedisCache,
		OnRoundTrip: m.RedisRoundTrip, Tracer: tr.tracer})
	backend, err := newBackend(cfg, m, logger, tr.crmTransport())
	if err != nil {
		return nil, err
	}
	keys, err := newKeys(cfg, logger)
	if err != nil {
		return nil, err
	}
	evs, err := newEvents(cfg, client, m, logger)
	if err != nil {
		return nil, err
	}
	store := redisrepo.NewProfileStore(client, redisrepo.ProfileOptions{TTL: cfg.ProfileTTL, Logger: logger, Wakeups: r.wakeups})
	tokens := newTokenStore(cfg, client, evs.recorder, logger)
	svc := newService(cfg, backend, store, tokens, evs.recorder, m, tr.profileTracer(), logger)
	h, err := newHandler(cfg, client, svc, tokens, keys, m, tr, logger)
	if err != nil {
		svc.Close()
		return nil, err
	}
	logConfig(logger, cfg)
	stopEvents := evs.start()
	// Background section reloads end before Redis is closed.
	return &app{Handler: h, Profile: svc, close: func() { stopEvents(); svc.Close(); r.close() },
		flushTraces: tr.forceFlush}, nil
}

// redisConn is the Redis client newApp uses, and how to close it.
type redisConn struct {
	client rueidis.Client
	// Reload waiters are woken by invalidations (redisrepo/wake.go); the
	// embedded server has none, and they poll.
	wakeups *redisrepo.Wakeups
	close   func()
}

// newRedis connects to REDIS_URL, or starts the embedded server when it is
// empty.
func newRedis(cfg Config, logger *slog.Logger) (redisConn, error) {
	var r redisConn
	if cfg.RedisURL == "" {
		c, stop, err := redisrepo.StartEmbedded()
		if err != nil {
			return r, fmt.Errorf("start embedded redis: %w", err)
		}
		r = redisConn{client: c, close: stop}
		logger.Warn("REDIS_URL is not set: using an EMBEDDED IN-MEMORY Redis. All sessions and cached profiles are LOST when the process exits; set REDIS_URL for a real server")
	} else {
		wakeups := redisrepo.NewWakeups()
		c, err := redisrepo.NewClient(cfg.RedisURL, cfg.RedisTimeout, redisrepo.WithSentinelPassword(cfg.RedisSentinelPassword),
			redisrepo.WithWakeups(wakeups))
		if err != nil {
			return r, err
		}
		r = redisConn{client: c, wakeups: wakeups, close: c.Close}
		logConnected(logger, c)
	}
	// Every Redis call without an earlier deadline gets REDIS_TIMEOUT: an
	// outage answers 503 in bounded time instead of hanging requests.
	r.client = redisrepo.WithTimeout(r.client, cfg.RedisTimeout)
	return r, nil
}

func logConnected(logger *slog.Logger, client rueidis.Client) {
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

// signingKeys are the session keys and the CSRF keys derived from them.
type signingKeys struct {
	secret, csrf           []byte
	previous, csrfPrevious [][]byte
}

// newKeys takes SESSION_SECRET (or a random one) and
// SESSION_SECRET_PREVIOUS. CSRF tokens get their own key, derived from the
// same secret, so that every instance agrees on them and a rotation keeps
// them valid.
func newKeys(cfg Config, logger *slog.Logger) (signingKeys, error) {
	k := signingKeys{secret: cfg.Secret}
	if k.secret == nil {
		k.secret = make([]byte, 32)
		_, _ = rand.Read(k.secret) // never fails (crypto/rand docs)
		logger.Warn("SESSION_SECRET is not set: using a random key for this process. Sessions end when it restarts, and several instances cannot share sessions")
	}
	if cfg.PreviousSecret != nil {
		k.previous = append(k.previous, cfg.PreviousSecret)
	}
	var err error
	if k.csrf, err = deriveCSRFKey(k.secret); err != nil {
		return k, err
	}
	for _, p := range k.previous {
		c, err := deriveCSRFKey(p)
		if err != nil {
			return k, err
		}
		k.csrfPrevious = append(k.csrfPrevious, c)
	}
	return k, nil
}

func newTokenStore(cfg Config, client rueidis.Client, evs profile.Events, logger *slog.Logger) *redisrepo.TokenStore {
	// The embedded Redis has no replicas to wait for.
	waitReplicas := cfg.RedisWaitReplicas
	if cfg.RedisURL == "" {
		waitReplicas = 0
	} else if waitReplicas > 0 {
		logger.Info("logins wait for replicas to confirm their session", "replicas", waitReplicas, "at_most", cfg.RedisTimeout)
	}
	return redisrepo.NewTokenStore(client, redisrepo.TokenOptions{
		IndexTTL:     cfg.SessionMaxAge,
		FenceTTL:     cfg.fenceTTL(),
		MaxSessions:  cfg.MaxSessions,
		MaxDataBytes: cfg.SessionDataMaxBytes,
		WaitReplicas: waitReplicas,
		WaitTimeout:  cfg.RedisTimeout,
		Logger:       logger,
		Events:       evs,
	})
}

func newService(cfg Config, backend profile.Backend, store *redisrepo.ProfileStore, tokens *redisrepo.TokenStore,
	evs profile.Events, m *metrics.Metrics, tracer profile.Tracer, logger *slog.Logger) *profile.Service {
	return profile.NewService(backend, store, store, profile.Options{
		BackendTimeout:  cfg.BackendTimeout,
		RefreshCooldown: cfg.RefreshCooldown,
		Logger:          logger,
		OnBackendLoad:   m.BackendLoad,
		OnLockWait:      m.LockWait,
		Accounts:        tokens,
		Events:          evs,
		Fresh:           cfg.freshness(cfg.ProfileTTL),
		OnSectionReload: func(s profile.Section, outcome string, _ time.Duration) { m.SectionReload(s.String(), outcome) },
		OnStale:         func(s profile.Section) { m.StaleSection(s.String()) },
		OnReadWait:      m.ReadWait,
		Tracer:          tracer,
	})
}

// newHandler is the HTTP side: the login limiters, the session manager
// and the echo server.
func newHandler(cfg Config, client rueidis.Client, svc *profile.Service, tokens *redisrepo.TokenStore,
	keys signingKeys, m *metrics.Metrics, tr *tracing, logger *slog.Logger) (http.Handler, error) {
	byAddress, byAccount, err := newLoginLimiters(cfg, client)
	if err != nil {
		return nil, err
	}
	mgr, err := auth.New(auth.Config{
		Tokens:          tokens,
		Secret:          keys.secret,
		PreviousSecrets: keys.previous,
		CookieSecure:    cfg.CookieSecure,
		SecureRequest:   secureRequest(cfg.TrustedProxies),
		TokenTTL:        cfg.TokenTTL,
		MaxAge:          cfg.SessionMaxAge,
		Logger:          logger,
		OnValidate:      m.TokenValidation,
	})
	if err != nil {
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
		CSRFKey:          keys.csrf,
		CSRFPreviousKeys: keys.csrfPrevious,
		IPExtractor:      ipExtractor(cfg.TrustedProxies),
		Tracer:           tr.tracer,
		Propagator:       tr.prop,
	})
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	return srv.Handler(), nil
}

// newLoginLimiters are the login budgets in Redis, shared by every
// instance: pc:rl:{a:<address>} and pc:rl:{e:<hashed email>}.
func newLoginLimiters(cfg Config, client rueidis.Client) (byAddress, byAccount *redisrepo.Limiter, err error) {
	byAddress, err = redisrepo.NewLimiter(client, redisrepo.LimiterOptions{Name: "a", Rate: cfg.LoginRate, Burst: cfg.LoginBurst})
	if err != nil {
		return nil, nil, err
	}
	byAccount, err = redisrepo.NewLimiter(client, redisrepo.LimiterOptions{Name: "e", Rate: cfg.LoginAccountRate, Burst: cfg.LoginAccountBurst})
	if err != nil {
		return nil, nil, err
	}
	return byAddress, byAccount, nil
}

// logConfig logs the configuration in effect, secrets masked.
func logConfig(logger *slog.Logger, cfg Config) {
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
}
