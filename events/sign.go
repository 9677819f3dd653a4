// Package events delivers the session and profile events that redisrepo
// records (docs/events.md) to a webhook, signed the Standard Webhooks way,
// at least once, whichever instance is alive.
package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/profilecache/profilecache/profile"
)

// Standard Webhooks headers (https://www.standardwebhooks.com).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts a Standard Webhooks secret: "whsec_" + base64 of the
// key.
const SecretPrefix = "whsec_"

// MinKeyLen is the shortest accepted key (decoded), as the specification
// asks: 24 to 64 bytes.
const MinKeyLen = 24

// Signer signs deliveries: HMAC-SHA256 over id.timestamp.body.
type Signer struct {
	key []byte
}

// NewSigner takes a secret "whsec_<base64>" (the prefix is optional, as
// the reference libraries have it).
func NewSigner(secret string) (*Signer, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil {
		return nil, errors.New("events: secret is not whsec_ followed by base64")
	}
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("events: secret key has %d bytes, want at least %d (e.g. whsec_$(head -c 32 /dev/urandom | base64))", len(key), MinKeyLen)
	}
	return &Signer{key: key}, nil
}

// Sign returns the webhook-signature header value for one attempt:
// "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
func (s *Signer) Sign(id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, timestamp, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// payload is the JSON body of a delivery: the stream entry's fields plus
// its id. The field order is fixed, so every attempt, on every instance,
// sends the same bytes.
type payload struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Reason     string `json:"reason"`
	UserID     string `json:"user_id"`
	SessionID  string `json:"session_id,omitempty"`
	Time       string `json:"time"`
	Instance   string `json:"instance"`
	DurationMS *int64 `json:"duration_ms,omitempty"`
	Section    string `json:"section,omitempty"`
}

// Body is the JSON body that delivers e.
func Body(e profile.Event) []byte {
	p := payload{ID: e.ID, Type: e.Type, Reason: e.Reason, UserID: e.UserID.String(), SessionID: e.SessionID,
		Time: e.Time.UTC().Format(profile.EventTimeFormat), Instance: e.Instance, Section: e.Section}
	if e.Type == profile.EventProfileReloaded {
		ms := e.Duration.Milliseconds()
		p.DurationMS = &ms
	}
	b, _ := json.Marshal(p) // strings and an int: cannot fail
	return b
}
