package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLoadConfigExt(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(t *testing.T, c Config)
		wantErr string // the variable the one-line error names
	}{
		{name: "defaults", check: func(t *testing.T, c Config) {
			if c.BackendURL != "" || c.WebhookSecret != "" || c.Pprof || c.PprofAddr != "127.0.0.1:6060" ||
				c.LogLevel != slog.LevelInfo || c.BackendRequestTimeout != 5*time.Second || c.BackendAttempts != 3 {
				t.Errorf("defaults: %+v", c.extConfig)
			}
		}},
		{name: "all set", env: map[string]string{
			"BACKEND_URL": "https://crm.internal/api/v1", "BACKEND_TOKEN": "t", "BACKEND_REQUEST_TIMEOUT": "750ms",
			"BACKEND_ATTEMPTS": "1", "WEBHOOK_SECRET": strings.Repeat("s", 16), "PPROF": "true",
			"PPROF_ADDR": "localhost:7070", "LOG_LEVEL": "debug",
		}, check: func(t *testing.T, c Config) {
			want := extConfig{BackendURL: "https://crm.internal/api/v1", BackendToken: "t", BackendRequestTimeout: 750 * time.Millisecond,
				BackendAttempts: 1, WebhookSecret: strings.Repeat("s", 16), Pprof: true, PprofAddr: "localhost:7070", LogLevel: slog.LevelDebug}
			if c.extConfig != want {
				t.Errorf("got %+v, want %+v", c.extConfig, want)
			}
		}},
		{name: "flags win", env: map[string]string{"BACKEND_URL": "http://a"}, args: []string{"-backend-url", "http://b", "-pprof"},
			check: func(t *testing.T, c Config) {
				if c.BackendURL != "http://b" || !c.Pprof {
					t.Errorf("BackendURL=%q Pprof=%v, want the flags' values", c.BackendURL, c.Pprof)
				}
			}},
		{name: "log level warn", env: map[string]string{"LOG_LEVEL": "WARN"}, check: func(t *testing.T, c Config) {
			if c.LogLevel != slog.LevelWarn {
				t.Errorf("LogLevel=%v", c.LogLevel)
			}
		}},
		{name: "backend url without scheme", env: map[string]string{"BACKEND_URL": "crm.internal:8080"}, wantErr: "BACKEND_URL"},
		{name: "backend url with query", env: map[string]string{"BACKEND_URL": "http://crm/?x=1"}, wantErr: "BACKEND_URL"},
		{name: "request timeout", env: map[string]string{"BACKEND_REQUEST_TIMEOUT": "soon"}, wantErr: "BACKEND_REQUEST_TIMEOUT"},
		{name: "zero attempts", env: map[string]string{"BACKEND_ATTEMPTS": "0"}, wantErr: "BACKEND_ATTEMPTS"},
		{name: "short webhook secret", env: map[string]string{"WEBHOOK_SECRET": "short"}, wantErr: "WEBHOOK_SECRET"},
		{name: "pprof not a bool", env: map[string]string{"PPROF": "maybe"}, wantErr: "PPROF"},
		{name: "pprof on a public address", env: map[string]string{"PPROF": "1", "PPROF_ADDR": "0.0.0.0:6060"}, wantErr: "PPROF_ADDR"},
		{name: "log level", env: map[string]string{"LOG_LEVEL": "loud"}, wantErr: "LOG_LEVEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(tt.args, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr+":") {
					t.Fatalf("err=%v, want one starting %q", err, tt.wantErr+":")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestRedactedBackend(t *testing.T) {
	for in, want := range map[string]string{
		"":                           "(mock)",
		"http://crm:8080/api/":       "http://crm:8080/api",
		"https://u:secret@crm/v1":    "https://u:xxxxx@crm/v1",
		"http://crm.internal:9000/x": "http://crm.internal:9000/x",
	} {
		if got := (&extConfig{BackendURL: in}).redactedBackend(); got != want {
			t.Errorf("redactedBackend(%q)=%q, want %q", in, got, want)
		}
	}
}
