package auth

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestVerifiedCache(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	var c verifiedCache
	want := verifiedJWT{userID: uuid.New(), subject: "s", sessionID: "sid", expires: now.Add(time.Minute)}
	if _, ok := c.get("jwt", now); ok {
		t.Fatal("get on an empty cache: found, want nothing")
	}
	c.put("jwt", want)
	if got, ok := c.get("jwt", now); !ok || got != want {
		t.Fatalf("get = %+v, %v; want %+v, true", got, ok, want)
	}
	if _, ok := c.get("jwt-other", now); ok {
		t.Fatal("get of other bytes: found, want nothing")
	}
	// At exp the JWT is void, as jwt's own check (no leeway) says.
	if _, ok := c.get("jwt", now.Add(time.Minute)); ok {
		t.Fatal("get at exp: found, want nothing")
	}
	if _, ok := c.m["jwt"]; ok {
		t.Error("an expired entry stays in the cache, want it dropped")
	}
}

func TestVerifiedCacheIsBounded(t *testing.T) {
	now := time.Now()
	var c verifiedCache
	for i := range maxVerified + 100 {
		c.put(strconv.Itoa(i), verifiedJWT{expires: now.Add(time.Hour)})
	}
	if got := len(c.m); got > maxVerified {
		t.Errorf("cache holds %d entries, want at most %d", got, maxVerified)
	}
	if _, ok := c.get(strconv.Itoa(maxVerified+99), now); !ok {
		t.Error("the newest entry is not in the cache")
	}
}
