package main

import (
	"strings"
	"testing"
	"time"

	"github.com/profilecache/profilecache/profile"
)

func TestFreshConfig(t *testing.T) {
	w := func(pairs ...any) (out [profile.NumSections]time.Duration) {
		out = defaultFresh
		for i := 0; i < len(pairs); i += 2 {
			out[pairs[i].(profile.Section)] = pairs[i+1].(time.Duration)
		}
		return out
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    profile.Freshness
		wantErr string
	}{
		{"defaults", nil, profile.Freshness{Window: defaultFresh, StaleMax: 24 * time.Hour}, ""},
		{"off", map[string]string{"PROFILE_FRESH": "off"}, profile.Freshness{}, ""},
		{"one section", map[string]string{"PROFILE_FRESH": "orders=2s"},
			profile.Freshness{Window: w(profile.SectionOrders, 2*time.Second), StaleMax: 24 * time.Hour}, ""},
		{"several, spaces, one off", map[string]string{"PROFILE_FRESH": " basic=10m , inquiries=off", "PROFILE_STALE_MAX": "2h"},
			profile.Freshness{Window: w(profile.SectionBasic, 10*time.Minute, profile.SectionInquiries, time.Duration(0)), StaleMax: 2 * time.Hour}, ""},
		{"stale max follows PROFILE_TTL", map[string]string{"PROFILE_TTL": "48h"},
			profile.Freshness{Window: defaultFresh, StaleMax: 48 * time.Hour}, ""},
		{"unknown section", map[string]string{"PROFILE_FRESH": "order=5m"}, profile.Freshness{}, `PROFILE_FRESH: unknown section "order"`},
		{"twice", map[string]string{"PROFILE_FRESH": "orders=5m,orders=1m"}, profile.Freshness{}, "named twice"},
		{"bad duration", map[string]string{"PROFILE_FRESH": "orders=5"}, profile.Freshness{}, `invalid duration "5"`},
		{"negative", map[string]string{"PROFILE_FRESH": "orders=-1s"}, profile.Freshness{}, "invalid duration"},
		{"no pair", map[string]string{"PROFILE_FRESH": "orders"}, profile.Freshness{}, "want section=duration"},
		{"bad stale max", map[string]string{"PROFILE_STALE_MAX": "0s"}, profile.Freshness{}, "PROFILE_STALE_MAX"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(nil, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.freshness(cfg.ProfileTTL); got != tt.want {
				t.Errorf("freshness = %+v, want %+v", got, tt.want)
			}
		})
	}
}
