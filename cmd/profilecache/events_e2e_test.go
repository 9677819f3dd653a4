package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/auth"
	"github.com/profilecache/profilecache/internal/redistest"
	"github.com/profilecache/profilecache/internal/webhooktest"
	"github.com/profilecache/profilecache/profile"
)

// e2eEventsSecret signs the test webhooks: whsec_ + base64 of 32 bytes.
var e2eEventsSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// apiSession is a Bearer login: its JWT and its public session id.
type apiSession struct{ token, id, sid string }

// loginSession signs in through POST /api/login on url.
func loginSession(t *testing.T, url, email, password string) apiSession {
	t.Helper()
	resp, err := http.Post(url+"/api/login", "application/json",
		strings.NewReader(`{"email":"`+email+`","password":"`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("api login: %d %v", resp.StatusCode, err)
	}
	// The JWT's sid claim is the server-side token; events name the
	// session by its hash only.
	parts := strings.Split(out.Token, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct{ SID string }
	if err := json.Unmarshal(payload, &claims); err != nil || claims.SID == "" {
		t.Fatalf("JWT payload %s: %v", payload, err)
	}
	return apiSession{token: out.Token, id: auth.SessionIDFor(claims.SID), sid: claims.SID}
}

func bearer(s apiSession) []string { return []string{"Authorization", "Bearer " + s.token} }

// streamEntries is what pc:events holds, oldest first.
func streamEntries(t *testing.T, c rueidis.Client) []rueidis.XRangeEntry {
	t.Helper()
	xs, err := c.Do(context.Background(), c.B().Xrange().Key("pc:events").Start("-").End("+").Build()).AsXRange()
	if err != nil {
		t.Fatal(err)
	}
	return xs
}

// The stream holds, in order, what a scripted sequence of requests to the
// real program did to alice's sessions and profile, with the documented
// fields and nothing that could sign anyone in or identify them beyond the
// wantStream is what testE2EEventStream's requests leave in the stream:
// type, reason, and which of its sessions.
var wantStream = []string{
	"profile.reloaded login", "session.created login s1",
	"profile.reloaded login", "session.created login s2",
	"profile.reloaded login", "session.created login s3", "session.revoked limit s1",
	"session.revoked logout s3",
	"profile.reloaded login", "session.created login s4",
	"session.revoked revoke s2",
	"profile.reloaded refresh",
	"profile.invalidated profile_changed",
	"profile.reloaded miss",
	"profile.reloaded login", "session.timed_out idle s4", "session.created login s5",
	"session.revoked logout_all s5",
	"profile.reloaded login", "session.created login s6",
	"session.revoked credentials_changed s6",
	"profile.reloaded login", "session.created login s7",
	"session.revoked erased s7", "profile.invalidated erased",
}

// user id.
func TestE2EEventStream(t *testing.T) { redistest.Targets(t, testE2EEventStream) }

func testE2EEventStream(t *testing.T, target redistest.Target) {
	e := startE2EOn(t, target, map[string]string{
		"MAX_SESSIONS_PER_USER": "2", "REFRESH_COOLDOWN": "0", "WEBHOOK_SECRET": e2eWebhookSecret,
	})
	c := &http.Client{}
	const email, password = "alice@example.com", "alice-secret"
	uid := profile.DemoUserID(email).String()
	login := func() apiSession { return loginSession(t, e.url, email, password) }
	call := func(method, path string, want int, hdr ...string) {
		t.Helper()
		resp, body := e.do(c, method, path, nil, hdr...)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, body, want)
		}
	}
	crm := func(event string) {
		t.Helper()
		resp, body := e.do(c, "POST", "/internal/profile-changed", strings.NewReader(`{"user_id":"`+uid+`","event":"`+event+`"}`),
			"Content-Type", "application/json", "X-Webhook-Secret", e2eWebhookSecret)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("CRM webhook %s: %d %s", event, resp.StatusCode, body)
		}
	}

	var s [8]apiSession
	s[1], s[2], s[3] = login(), login(), login() // the third ends the first (cap 2)
	call("POST", "/api/logout", http.StatusNoContent, bearer(s[3])...)
	s[4] = login()
	call("DELETE", "/api/sessions/"+s[2].id, http.StatusNoContent, bearer(s[4])...)
	call("POST", "/api/me/refresh", http.StatusNoContent, bearer(s[4])...)
	crm("profile_changed")
	call("GET", "/api/me", http.StatusOK, bearer(s[4])...) // a miss: reloads
	// s4's token expires in Redis (its TTL, sped up); the next login notices.
	if err := e.redis.Do(context.Background(), e.redis.B().Del().Key("pc:{u:"+uid+"}:s:"+s[4].id).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	s[5] = login()
	call("POST", "/api/logout-all", http.StatusOK, bearer(s[5])...)
	s[6] = login()
	crm("credentials_changed")
	s[7] = login()
	crm("erased")

	name := map[string]string{}
	for i, ss := range s[1:] {
		name[ss.id] = "s" + string(rune('1'+i))
	}
	var got []string
	for _, x := range streamEntries(t, e.redis) {
		f := x.FieldValues
		got = append(got, strings.TrimSpace(f["type"]+" "+f["reason"]+" "+name[f["session_id"]]))
		checkEntry(t, x, uid, append([]string{email, password, "Go-http-client"}, sessionSecrets(s[1:])...))
	}
	if want := wantStream; !slices.Equal(got, want) {
		t.Fatalf("stream:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// sessionSecrets are what must never leave the service: tokens and JWTs.
func sessionSecrets(ss []apiSession) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.sid, s.token)
	}
	return out
}

// checkEntry checks one stream entry of user uid: the documented fields,
// well-formed, and none of secrets in any value.
func checkEntry(t *testing.T, x rueidis.XRangeEntry, uid string, secrets []string) {
	t.Helper()
	fields := []string{"type", "reason", "user_id", "session_id", "time", "instance", "duration_ms"}
	f := x.FieldValues
	if f["user_id"] != uid || f["instance"] == "" {
		t.Errorf("entry %s: user_id %q instance %q, want %s and an instance", x.ID, f["user_id"], f["instance"], uid)
	}
	if _, err := time.Parse(profile.EventTimeFormat, f["time"]); err != nil {
		t.Errorf("entry %s: time: %v", x.ID, err)
	}
	if _, ok := f["duration_ms"]; ok != (f["type"] == profile.EventProfileReloaded) {
		t.Errorf("entry %s: duration_ms on a %s: %v", x.ID, f["type"], ok)
	}
	for k, v := range f {
		if !slices.Contains(fields, k) {
			t.Errorf("entry %s has an undocumented field %q", x.ID, k)
		}
		for _, secret := range secrets {
			if strings.Contains(v, secret) {
				t.Errorf("entry %s field %s holds a secret (a token, an email, a password, a user agent)", x.ID, k)
			}
		}
	}
}

// The webhook receives every event of the stream, signed (checked by the
// receiver's own verifier), with the stream entry's id as webhook-id; a
// 5xx is retried with the same id and the same bytes, a 400 is given up
// at once and counted.
func TestE2EEventWebhook(t *testing.T) {
	rc := webhookReceiver(t, func(r *http.Request, d webhooktest.Delivery) int {
		switch {
		case bytes.Contains(d.Body, []byte(`"reason":"logout"`)):
			return http.StatusBadRequest // never accepted: given up
		case d.Nth == 1:
			return http.StatusServiceUnavailable // first attempts fail
		}
		return http.StatusNoContent
	})
	e := startWithLogger(t, map[string]string{
		"EVENTS_WEBHOOK_URL": rc.URL, "EVENTS_WEBHOOK_SECRET": e2eEventsSecret, "INSTANCE_ID": "web-1",
	})
	s := loginSession(t, e.url, "bob@example.com", "bob-secret")
	resp, _ := e.do(&http.Client{}, "POST", "/api/logout", nil, bearer(s)...)
	wantStatus(t, resp, http.StatusNoContent)
	loginSession(t, e.url, "bob@example.com", "bob-secret")

	entries := streamEntries(t, e.redis)
	if len(entries) != 5 {
		t.Fatalf("%d stream entries, want 5 (2 logins of 2 events, 1 logout)", len(entries))
	}
	last := entries[len(entries)-1].ID
	ds := rc.WaitFor(t, "second delivery of the last event", func(ds []webhooktest.Delivery) bool {
		return slices.ContainsFunc(ds, func(d webhooktest.Delivery) bool { return d.ID == last && d.Nth == 2 })
	})
	checkDeliveries(t, entries, ds, "web-1")
	counts := map[string]int{}
	for _, d := range ds {
		counts[d.ID]++
	}
	for i, x := range entries {
		want := 2
		if x.FieldValues["reason"] == profile.ReasonLogout {
			want = 1
		}
		if counts[x.ID] != want {
			t.Errorf("entry %d (%s %s): %d deliveries, want %d", i, x.FieldValues["type"], x.FieldValues["reason"], counts[x.ID], want)
		}
	}
	// The receiver records a delivery before it answers: the deliverer
	// counts it a moment later.
	waitMetrics(t, e, `profilecache_events_webhook_total{result="delivered"} 4`,
		`profilecache_events_webhook_total{result="dead"} 1`, `profilecache_events_webhook_total{result="retry"} 4`,
		`profilecache_events_lost_total 0`)
	if !regexp.MustCompile(`"msg":"events: delivery given up".*"why":"the receiver refused it with 400"`).MatchString(e.log.String()) {
		t.Errorf("no log line for the given-up event")
	}
}

// checkDeliveries: every entry was delivered, first in stream order, every
// delivery of an id with the same bytes, each signed, the body holding the
// entry's fields, its id and the instance that recorded it.
func checkDeliveries(t *testing.T, entries []rueidis.XRangeEntry, ds []webhooktest.Delivery, instance string) {
	t.Helper()
	bodies := map[string][]byte{}
	var order []string
	for _, d := range ds {
		if d.SigErr != nil {
			t.Errorf("delivery %s #%d: %v", d.ID, d.Nth, d.SigErr)
		}
		if first, ok := bodies[d.ID]; ok && !bytes.Equal(first, d.Body) {
			t.Errorf("delivery %s #%d: body %s differs from the first %s", d.ID, d.Nth, d.Body, first)
		} else if !ok {
			bodies[d.ID] = d.Body
			order = append(order, d.ID)
		}
	}
	var ids []string
	for _, x := range entries {
		ids = append(ids, x.ID)
		var body map[string]any
		if err := json.Unmarshal(bodies[x.ID], &body); err != nil {
			t.Fatalf("body of %s: %v", x.ID, err)
		}
		if body["id"] != x.ID || body["instance"] != instance {
			t.Errorf("body %s: want id %s, instance %s", bodies[x.ID], x.ID, instance)
		}
		for k, v := range x.FieldValues {
			if k != "duration_ms" && body[k] != v {
				t.Errorf("body %s: %s = %v, stream says %q", bodies[x.ID], k, body[k], v)
			}
		}
	}
	if !slices.Equal(order, ids) {
		t.Errorf("first deliveries in order %v, want the stream's %v", order, ids)
	}
}

// waitMetrics polls /metrics until it has every line of want.
func waitMetrics(t *testing.T, e *e2e, want ...string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		_, metrics := e.do(&http.Client{}, "GET", "/metrics", nil)
		missing := slices.DeleteFunc(slices.Clone(want), func(m string) bool { return strings.Contains(metrics, m) })
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %q:\n%s", missing, grepLines(metrics, "events"))
		}
	}
}

func webhookReceiver(t *testing.T, respond func(*http.Request, webhooktest.Delivery) int) *webhooktest.Receiver {
	t.Helper()
	return webhooktest.Start(t, e2eEventsSecret, respond)
}

// startInstance runs the real program as a process on srv, with env added,
// and returns its URL and the process.
func startInstance(t *testing.T, srv *redistest.Server, name string, env map[string]string) (string, *exec.Cmd) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "ADDR=127.0.0.1:0", "INSTANCE_ID="+name)
	for k, v := range e2eEnv(srv) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stderr = f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return waitListening(t, path), cmd
}

// An instance killed while it delivers an event does not lose it: another
// instance delivers the same event (same webhook-id, the same bytes, a
// valid signature) once the visibility timeout has passed.
func TestE2EEventWebhookSurvivesAKilledInstance(t *testing.T) {
	srv := redistest.Start(t)
	held := make(chan string, 1)
	var holding atomic.Bool
	rc := webhookReceiver(t, func(r *http.Request, d webhooktest.Delivery) int {
		if holding.CompareAndSwap(false, true) {
			held <- d.ID
			<-r.Context().Done() // hold the first delivery until its sender dies
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	env := map[string]string{
		"EVENTS_WEBHOOK_URL": rc.URL, "EVENTS_WEBHOOK_SECRET": e2eEventsSecret,
		"EVENTS_WEBHOOK_VISIBILITY": "1s", "EVENTS_WEBHOOK_TIMEOUT": "5m",
	}
	urlA, a := startInstance(t, srv, "instance-a", env)
	loginSession(t, urlA, "alice@example.com", "alice-secret")
	var heldID string
	select {
	case heldID = <-held:
	case <-time.After(time.Minute):
		t.Fatal("no delivery reached the receiver")
	}
	startInstance(t, srv, "instance-b", env)
	if err := a.Process.Kill(); err != nil { // SIGKILL: no shutdown, no ack
		t.Fatal(err)
	}
	_ = a.Wait()

	client := srv.Client(t, func(o *rueidis.ClientOption) { o.DisableCache = true })
	entries := streamEntries(t, client)
	if len(entries) != 2 || entries[0].ID != heldID {
		t.Fatalf("stream %v, want the login's 2 events, the first one held", entries)
	}
	ds := rc.WaitFor(t, "delivery of both events after the kill", func(ds []webhooktest.Delivery) bool {
		return slices.ContainsFunc(ds, func(d webhooktest.Delivery) bool { return d.ID == heldID && d.Nth == 2 }) &&
			slices.ContainsFunc(ds, func(d webhooktest.Delivery) bool { return d.ID == entries[1].ID })
	})
	first := ds[0]
	if first.ID != heldID || first.SigErr != nil {
		t.Fatalf("first delivery %s (%v), want the held %s, signed", first.ID, first.SigErr, heldID)
	}
	for _, d := range ds[1:] {
		if d.SigErr != nil {
			t.Errorf("delivery %s #%d: %v", d.ID, d.Nth, d.SigErr)
		}
		if d.ID == heldID && !bytes.Equal(d.Body, first.Body) {
			t.Errorf("redelivery of %s: body %s, want the held one's %s", d.ID, d.Body, first.Body)
		}
	}
	var body struct{ Instance string }
	_ = json.Unmarshal(first.Body, &body)
	if body.Instance != "instance-a" {
		t.Errorf("the event says instance %q recorded it, want instance-a", body.Instance)
	}
	waitNothingPending(t, client)
}

// waitNothingPending polls until the delivery group has no pending entry.
func waitNothingPending(t *testing.T, client rueidis.Client) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		pending, err := client.Do(context.Background(), client.B().Xpending().Key("pc:events").Group("pc-webhook").Build()).ToArray()
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := pending[0].AsInt64(); n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("events still pending in the group")
		}
	}
}
