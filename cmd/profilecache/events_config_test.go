package main

import (
	"strings"
	"testing"
	"time"
)

func TestEventsConfig(t *testing.T) {
	for _, tt := range []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", check: func(t *testing.T, c Config) {
			if !c.Events || c.EventsMaxLen != 100_000 || c.EventsWebhookURL != "" || c.EventsWebhookVisibility != 30*time.Second {
				t.Errorf("defaults: %+v", c.eventsConfig)
			}
		}},
		{name: "webhook", env: map[string]string{"EVENTS_WEBHOOK_URL": "https://hooks.example/pc", "EVENTS_WEBHOOK_SECRET": e2eEventsSecret,
			"EVENTS_WEBHOOK_TIMEOUT": "3s", "EVENTS_WEBHOOK_VISIBILITY": "10s", "EVENTS_WEBHOOK_MAX_AGE": "1h", "EVENTS_MAX_LEN": "500", "INSTANCE_ID": "web-7"},
			check: func(t *testing.T, c Config) {
				x := c.eventsConfig
				if x.EventsWebhookTimeout != 3*time.Second || x.EventsWebhookVisibility != 10*time.Second || x.EventsWebhookMaxAge != time.Hour ||
					x.EventsMaxLen != 500 || c.instanceID() != "web-7" {
					t.Errorf("parsed: %+v", x)
				}
			}},
		{name: "off", env: map[string]string{"EVENTS": "false"}, check: func(t *testing.T, c Config) {
			if c.Events {
				t.Error("EVENTS=false left events on")
			}
		}},
		{name: "no secret", env: map[string]string{"EVENTS_WEBHOOK_URL": "https://hooks.example/pc"}, wantErr: "EVENTS_WEBHOOK_SECRET is required"},
		{name: "short secret", env: map[string]string{"EVENTS_WEBHOOK_URL": "https://hooks.example/pc", "EVENTS_WEBHOOK_SECRET": "whsec_c2hvcnQ="},
			wantErr: "EVENTS_WEBHOOK_SECRET: events: secret key has 5 bytes"},
		{name: "webhook without events", env: map[string]string{"EVENTS": "false", "EVENTS_WEBHOOK_URL": "https://hooks.example/pc",
			"EVENTS_WEBHOOK_SECRET": e2eEventsSecret}, wantErr: "EVENTS=false"},
		{name: "bad max len", env: map[string]string{"EVENTS_MAX_LEN": "0"}, wantErr: "EVENTS_MAX_LEN: invalid length"},
		{name: "bad visibility", env: map[string]string{"EVENTS_WEBHOOK_VISIBILITY": "-1s"}, wantErr: "EVENTS_WEBHOOK_VISIBILITY: invalid duration"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(nil, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg)
		})
	}
	// Two instances on one host never share a consumer name by default.
	var c eventsConfig
	if a, b := c.instanceID(), c.instanceID(); a == b {
		t.Errorf("default instance ids %q and %q are equal", a, b)
	}
}
