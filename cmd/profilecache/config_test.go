package main

import (
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	secret := strings.Repeat("s", 32)
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{name: "Defaults", check: func(t *testing.T, c Config) {
			if c.Addr != "127.0.0.1:8080" || c.TokenTTL != 20*time.Minute || c.SessionMaxAge != 12*time.Hour ||
				c.ProfileTTL != 24*time.Hour || c.RedisURL != "" || c.Secret != nil || c.CookieSecure {
				t.Fatalf("defaults = %+v", c)
			}
		}},
		{name: "EnvThenFlags", env: map[string]string{"ADDR": ":9000", "BACKEND_LATENCY": "50ms", "SESSION_SECRET": secret, "COOKIE_SECURE": "true"},
			args: []string{"-addr", ":9001"}, check: func(t *testing.T, c Config) {
				if c.Addr != ":9001" || c.BackendLatency != 50*time.Millisecond || string(c.Secret) != secret || !c.CookieSecure {
					t.Fatalf("got %+v", c)
				}
			}},
		{name: "SentinelPasswordWithoutSentinels", env: map[string]string{"REDIS_URL": "redis://h:6379", "REDIS_SENTINEL_PASSWORD": "pw"},
			wantErr: "REDIS_SENTINEL_PASSWORD is set, but REDIS_URL names no sentinels"},
		{name: "SentinelPassword", env: map[string]string{"REDIS_URL": "redis://s1:26379?addr=s2:26379&master_set=mymaster", "REDIS_SENTINEL_PASSWORD": "pw"},
			check: func(t *testing.T, c Config) {
				if c.RedisSentinelPassword != "pw" {
					t.Fatalf("RedisSentinelPassword = %q", c.RedisSentinelPassword)
				}
			}},
		{name: "BadDuration", env: map[string]string{"TOKEN_TTL": "20 minutes"}, wantErr: `TOKEN_TTL: invalid duration "20 minutes"`},
		{name: "ShortSecret", env: map[string]string{"SESSION_SECRET": "too-short"}, wantErr: "SESSION_SECRET: must be at least 32 bytes"},
		{name: "ShortPreviousSecret", env: map[string]string{"SESSION_SECRET": secret, "SESSION_SECRET_PREVIOUS": "x"}, wantErr: "SESSION_SECRET_PREVIOUS"},
		{name: "ProfileNotLongerThanToken", env: map[string]string{"TOKEN_TTL": "1h", "PROFILE_TTL": "1h"}, wantErr: "PROFILE_TTL (1h0m0s) must be longer than TOKEN_TTL"},
		{name: "MaxAgeShorterThanToken", env: map[string]string{"SESSION_MAX_AGE": "1m"}, wantErr: "SESSION_MAX_AGE"},
		{name: "NegativeLatency", env: map[string]string{"BACKEND_LATENCY": "-1s"}, wantErr: "BACKEND_LATENCY"},
		{name: "BadBool", env: map[string]string{"COOKIE_SECURE": "yes please"}, wantErr: "COOKIE_SECURE"},
		{name: "BadRate", env: map[string]string{"LOGIN_RATE": "0"}, wantErr: "LOGIN_RATE"},
		{name: "ThrottleDefaults", check: func(t *testing.T, c Config) {
			if c.RefreshCooldown != 10*time.Second || c.LoginRate != 1 || c.LoginBurst != 20 ||
				c.LoginAccountRate != 0.1 || c.LoginAccountBurst != 10 {
				t.Fatalf("got cooldown %v, login %v/%d, account %v/%d", c.RefreshCooldown, c.LoginRate, c.LoginBurst, c.LoginAccountRate, c.LoginAccountBurst)
			}
		}},
		{name: "ThrottleSet", env: map[string]string{"REFRESH_COOLDOWN": "0", "LOGIN_ACCOUNT_RATE": "0.5", "LOGIN_ACCOUNT_BURST": "3"},
			check: func(t *testing.T, c Config) {
				if c.RefreshCooldown != 0 || c.LoginAccountRate != 0.5 || c.LoginAccountBurst != 3 {
					t.Fatalf("got cooldown %v, account %v/%d", c.RefreshCooldown, c.LoginAccountRate, c.LoginAccountBurst)
				}
			}},
		{name: "NegativeCooldown", env: map[string]string{"REFRESH_COOLDOWN": "-1s"}, wantErr: "REFRESH_COOLDOWN: must not be negative"},
		{name: "BadCooldown", env: map[string]string{"REFRESH_COOLDOWN": "10"}, wantErr: "REFRESH_COOLDOWN: invalid duration"},
		{name: "NaNRate", env: map[string]string{"LOGIN_ACCOUNT_RATE": "NaN"}, wantErr: "LOGIN_ACCOUNT_RATE"},
		{name: "InfRate", env: map[string]string{"LOGIN_RATE": "+Inf"}, wantErr: "LOGIN_RATE"},
		{name: "ZeroAccountBurst", env: map[string]string{"LOGIN_ACCOUNT_BURST": "0"}, wantErr: "LOGIN_ACCOUNT_BURST"},
		{name: "EndlessBudget", env: map[string]string{"LOGIN_ACCOUNT_RATE": "0.0000001"}, wantErr: "LOGIN_ACCOUNT_BURST/LOGIN_ACCOUNT_RATE"},
		{name: "SessionLimitsDefault", check: func(t *testing.T, c Config) {
			if c.MaxSessions != 20 || c.SessionDataMaxBytes != 256<<10 {
				t.Fatalf("MaxSessions=%d SessionDataMaxBytes=%d, want 20 and 262144", c.MaxSessions, c.SessionDataMaxBytes)
			}
		}},
		{name: "SessionLimitsSet", env: map[string]string{"MAX_SESSIONS_PER_USER": "5", "SESSION_DATA_MAX_BYTES": "1000"}, check: func(t *testing.T, c Config) {
			if c.MaxSessions != 5 || c.SessionDataMaxBytes != 1000 {
				t.Fatalf("MaxSessions=%d SessionDataMaxBytes=%d, want 5 and 1000", c.MaxSessions, c.SessionDataMaxBytes)
			}
		}},
		{name: "ZeroSessions", env: map[string]string{"MAX_SESSIONS_PER_USER": "0"}, wantErr: `MAX_SESSIONS_PER_USER: invalid session count "0" (a whole number >= 1)`},
		{name: "BadSessions", env: map[string]string{"MAX_SESSIONS_PER_USER": "twenty"}, wantErr: "MAX_SESSIONS_PER_USER"},
		{name: "FractionalSessions", env: map[string]string{"MAX_SESSIONS_PER_USER": "2.5"}, wantErr: "MAX_SESSIONS_PER_USER"},
		{name: "NegativeDataBytes", env: map[string]string{"SESSION_DATA_MAX_BYTES": "-1"}, wantErr: `SESSION_DATA_MAX_BYTES: invalid byte count "-1"`},
		{name: "UnitDataBytes", env: map[string]string{"SESSION_DATA_MAX_BYTES": "256KiB"}, wantErr: "SESSION_DATA_MAX_BYTES"},
		{name: "WaitReplicasDefault", check: func(t *testing.T, c Config) {
			if c.RedisWaitReplicas != 0 {
				t.Fatalf("RedisWaitReplicas=%d, want 0 (no wait)", c.RedisWaitReplicas)
			}
		}},
		{name: "WaitReplicasSet", env: map[string]string{"REDIS_WAIT_REPLICAS": "1"}, check: func(t *testing.T, c Config) {
			if c.RedisWaitReplicas != 1 {
				t.Fatalf("RedisWaitReplicas=%d, want 1", c.RedisWaitReplicas)
			}
		}},
		{name: "NegativeWaitReplicas", env: map[string]string{"REDIS_WAIT_REPLICAS": "-1"}, wantErr: `REDIS_WAIT_REPLICAS: invalid replica count "-1"`},
		{name: "BadWaitReplicas", env: map[string]string{"REDIS_WAIT_REPLICAS": "all"}, wantErr: "REDIS_WAIT_REPLICAS"},
		{name: "HugeDataBytes", env: map[string]string{"SESSION_DATA_MAX_BYTES": "99999999999999999999"}, wantErr: "SESSION_DATA_MAX_BYTES"},
		{name: "UnknownFlag", args: []string{"-nope"}, wantErr: "flags"},
		{name: "StrayArgument", args: []string{"serve"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(tt.args, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err=%v, want it to contain %q", err, tt.wantErr)
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

func TestRedactURL(t *testing.T) {
	if got := redactURL("redis://user:hunter2@h:6379/0"); strings.Contains(got, "hunter2") {
		t.Fatalf("redactURL leaked the password: %s", got)
	}
}
