// Package webhooktest is a webhook receiver for tests: it verifies every
// delivery's Standard Webhooks signature with its own code, written from
// the specification rather than shared with the sender, and records what
// arrived.
package webhooktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Delivery is one request the receiver got.
type Delivery struct {
	ID        string // webhook-id
	Timestamp int64  // webhook-timestamp
	Body      []byte
	// SigErr is nil when the signature verified.
	SigErr error
	// Nth counts the deliveries of this ID so far, this one included.
	Nth int
}

// Receiver is an HTTP server that takes webhook deliveries.
type Receiver struct {
	URL     string
	secret  string
	respond func(r *http.Request, d Delivery) int
	mu      sync.Mutex
	got     []Delivery
	seen    map[string]int
}

// Start runs a receiver until tb ends. respond answers each delivery with
// a status (nil: 204 to all); it may block, e.g. until r.Context() ends.
func Start(tb testing.TB, secret string, respond func(r *http.Request, d Delivery) int) *Receiver {
	tb.Helper()
	rc := &Receiver{secret: secret, respond: respond, seen: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(rc.serve))
	tb.Cleanup(srv.Close)
	rc.URL = srv.URL
	return rc
}

func (rc *Receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the sender went away
	}
	ts, _ := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64)
	d := Delivery{ID: r.Header.Get("webhook-id"), Timestamp: ts, Body: body,
		SigErr: Verify(rc.secret, r.Header, body, time.Now())}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		d.SigErr = errors.Join(d.SigErr, fmt.Errorf("%s with Content-Type %q", r.Method, r.Header.Get("Content-Type")))
	}
	rc.mu.Lock()
	rc.seen[d.ID]++
	d.Nth = rc.seen[d.ID]
	rc.got = append(rc.got, d)
	rc.mu.Unlock()
	status := http.StatusNoContent
	if rc.respond != nil {
		status = rc.respond(r, d)
	}
	w.WriteHeader(status)
}

// Deliveries returns what arrived so far, in order of arrival.
func (rc *Receiver) Deliveries() []Delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Delivery(nil), rc.got...)
}

// WaitFor polls until cond holds for the deliveries so far and returns
// them; it fails tb after a minute (a bound on a hang, not a measurement).
func (rc *Receiver) WaitFor(tb testing.TB, what string, cond func([]Delivery) bool) []Delivery {
	tb.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ds := rc.Deliveries(); cond(ds) {
			return ds
		}
	}
	tb.Fatalf("webhook receiver: no %s; got %d deliveries:\n%s", what, len(rc.Deliveries()), rc)
	return nil
}

func (rc *Receiver) String() string {
	var b strings.Builder
	for _, d := range rc.Deliveries() {
		fmt.Fprintf(&b, "  %s #%d sig=%v %s\n", d.ID, d.Nth, d.SigErr, d.Body)
	}
	return b.String()
}

// tolerance is how far a timestamp may be from now: the specification's
// suggested replay window.
const tolerance = 5 * time.Minute

// Verify checks a delivery as the Standard Webhooks specification says a
// receiver should: the timestamp within the tolerance, and one of the
// space-separated "v1,<base64>" signatures equal to HMAC-SHA256 over
// "<id>.<timestamp>.<body>" with the secret's key (the base64 after
// "whsec_").
func Verify(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q: %w", ts, err)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("timestamp %s is %s away from now", ts, d)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return fmt.Errorf("secret: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no valid v1 signature in %q", sigs)
}
