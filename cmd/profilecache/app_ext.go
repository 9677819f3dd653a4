package main

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/profilecache/profilecache/crm"
	"github.com/profilecache/profilecache/internal/metrics"
	"github.com/profilecache/profilecache/profile"
)

// newBackend is the CRM: the HTTP one at BACKEND_URL, else the demo mock.
func newBackend(cfg Config, m *metrics.Metrics, logger *slog.Logger, wrap func(http.RoundTripper) http.RoundTripper) (profile.Backend, error) {
	if cfg.BackendURL == "" {
		return profile.NewMockBackend(cfg.BackendLatency), nil
	}
	c, err := crm.New(crm.Config{
		BaseURL:     cfg.BackendURL,
		Token:       cfg.BackendToken,
		Timeout:     cfg.BackendRequestTimeout,
		MaxAttempts: cfg.BackendAttempts,
		OnRequest:   m.BackendRequest,
		OnRetry:     m.BackendRetry,
		Logger:      logger,
		// Tracing (tracing.go): nil when off.
		WrapTransport: wrap,
	})
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	return c, nil
}
