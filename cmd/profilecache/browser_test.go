package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/profilecache/profilecache/internal/browsertest"
	"github.com/profilecache/profilecache/internal/redistest"
)

// stepTimeout bounds one browser step (a navigation, a wait for a
// selector). Generous: the machines are small and busy, and no assertion
// depends on speed.
const stepTimeout = 60 * time.Second

// The widths the pages must work at: a small phone and a laptop.
const (
	phoneWidth  = 375
	laptopWidth = 1280
	viewHeight  = 900
)

// tab drives one Chromium tab with a timeout per step and t.Fatal on error.
type tab struct {
	t   *testing.T
	ctx context.Context
	dir string // where screenshots go

	axe     *browsertest.Axe
	checked []string // the pages and widths axe-core checked
}

func (b *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v (page: %s)", what, err, b.location())
	}
}

func runStep[T any](b *tab, what string, action chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		b.t.Fatalf("%s: %v (page: %s)", what, err, b.location())
	}
	return v
}

// navigate runs actions that load a new document (a link, a form) and waits
// for it, returning its HTTP response.
func (b *tab) navigate(what string, actions ...chromedp.Action[chromedp.Void]) *network.Response {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		b.t.Fatalf("%s: %v (page: %s)", what, err, b.location())
	}
	return resp
}

// expectError runs actions that end on the friendly error page with status.
func (b *tab) expectError(what string, status int64, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if resp := b.navigate(what, actions...); resp.Status != status {
		b.t.Fatalf("%s: status %d, want %d", what, resp.Status, status)
	}
	b.do("wait for the error page", chromedp.WaitVisible(chromedp.CSS("#error-heading")))
}

// checkSignedOutErrors checks the pages a signed-out person can reach
// besides the login form: a wrong password, the login throttle (429, with
// LOGIN_ACCOUNT_BURST=2), a missing page and a cross-site form (403).
func (b *tab) checkSignedOutErrors(e *e2e) {
	b.t.Helper()
	wrong := []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(e.url + "/login"),
		chromedp.SendKeys(chromedp.CSS("#email"), "mallory@example.com"),
		chromedp.SendKeys(chromedp.CSS("#password"), "guess"),
	}
	for i := range 2 {
		b.do("fill the form with a wrong password", wrong...)
		if resp := b.navigate("submit a wrong password", chromedp.Click(chromedp.CSS("#login-submit"))); resp.Status != 401 {
			b.t.Fatalf("wrong password %d: status %d, want 401", i+1, resp.Status)
		}
		b.do("wait for the login error", chromedp.WaitVisible(chromedp.CSS("#login-error")))
	}
	b.checkPage("login-error")
	b.do("fill the form with a wrong password", wrong...)
	b.expectError("a third wrong password", 429, chromedp.Click(chromedp.CSS("#login-submit")))
	b.checkPage("429")

	b.expectError("a missing page", 404, chromedp.Navigate(e.url+"/no-such-page"))
	b.checkPage("404")

	// A form on another site that posts here: the browser says
	// Sec-Fetch-Site: cross-site, and the service refuses it.
	form := `<!doctype html><html lang="en"><title>elsewhere</title><form method="post" action="` + e.url +
		`/logout"><button id="go">Go</button></form>`
	b.navigate("open another site", chromedp.Navigate("data:text/html,"+url.PathEscape(form)))
	b.expectError("post a form from another site", 403, chromedp.Click(chromedp.CSS("#go")))
	b.checkPage("403")
}

// checkStaleProfile waits past the orders' freshness window (1 s) and
// reloads the profile until it shows the Profile-Stale note: the first read
// past the window is served from Redis, marked, and reloaded behind it.
func (b *tab) checkStaleProfile(e *e2e) {
	b.t.Helper()
	for try := 0; ; try++ {
		time.Sleep(1100 * time.Millisecond)
		b.navigate("reload the profile", chromedp.Navigate(e.url+"/profile"))
		if runStep(b, "look for the stale note", chromedp.Evaluate[bool](`!!document.getElementById('stale')`)) {
			break
		}
		if try == 10 {
			b.t.Fatal("the profile never showed the Profile-Stale note past the orders' 1 s window")
		}
	}
	b.checkPage("profile-stale")
}

func (b *tab) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "unknown: " + err.Error()
	}
	return loc
}

func (b *tab) path() string {
	b.t.Helper()
	u, err := url.Parse(runStep(b, "read the location", chromedp.Location()))
	if err != nil {
		b.t.Fatal(err)
	}
	return u.Path
}

func (b *tab) text(sel string) string {
	b.t.Helper()
	return runStep(b, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// checkPage checks the current page at each width: no horizontal scrolling
// at the phone width (naming the elements that stick out), no axe-core
// violation of WCAG 2.2 A/AA, and a screenshot.
func (b *tab) checkPage(name string) {
	b.t.Helper()
	for _, w := range []int64{phoneWidth, laptopWidth} {
		b.do(fmt.Sprintf("set a %d px viewport", w), chromedp.EmulateViewport(w, viewHeight))
		if w == phoneWidth {
			scroll := runStep(b, "measure the page", chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
			if scroll > phoneWidth {
				wide := runStep(b, "find wide elements", chromedp.Evaluate[[]string](fmt.Sprintf(`
					Array.from(document.querySelectorAll('body *'))
					  .filter(e => e.getBoundingClientRect().right > %d)
					  .slice(0, 10)
					  .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + String(e.className).split(' ').join('.') : ''))`, phoneWidth)))
				b.t.Errorf("%s at %d px: document is %d px wide (horizontal scrolling); too wide: %v", name, phoneWidth, scroll, wide)
			}
		}
		b.checkAxe(name, w)
		png := runStep(b, "take a screenshot", chromedp.FullScreenshot(100))
		file := filepath.Join(b.dir, fmt.Sprintf("%s-%d.png", name, w))
		if err := os.WriteFile(file, png, 0o644); err != nil {
			b.t.Fatal(err)
		}
		b.t.Logf("screenshot: %s", file)
	}
	b.do("reset the viewport", chromedp.EmulateViewport(laptopWidth, viewHeight))
}

// checkAxe runs axe-core on the current page and fails listing every
// violation with the elements that fail it.
func (b *tab) checkAxe(name string, width int64) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	vs, err := b.axe.Run(ctx)
	if err != nil {
		b.t.Fatalf("axe-core on %s at %d px: %v", name, width, err)
	}
	b.checked = append(b.checked, fmt.Sprintf("%s@%d", name, width))
	if len(vs) == 0 {
		return
	}
	lines := make([]string, len(vs))
	for i, v := range vs {
		lines[i] = v.String()
	}
	b.t.Errorf("%s at %d px (%s): %d axe-core %s violations of %v:\n  %s",
		name, width, b.location(), len(vs), b.axe.Version, browsertest.AxeTags, strings.Join(lines, "\n  "))
}

// checkNoScript: the pages work without JavaScript (and the CSP forbids it).
func (b *tab) checkNoScript(name string) {
	b.t.Helper()
	if n := runStep(b, "count scripts", chromedp.Evaluate[int](`document.scripts.length`)); n != 0 {
		b.t.Errorf("%s has %d <script> elements, want none", name, n)
	}
}

// focusCheck says "ok" when the focused element shows a focus ring at
// least 2 px wide, one of whose colours (the outline, or a box-shadow ring
// beside it) has 3:1 contrast against both the page and the card
// backgrounds (WCAG 1.4.11; axe-core does not check focus indicators).
const focusCheck = `(() => {
	const a = document.activeElement;
	if (!a || a === document.body) return 'nothing focused';
	const s = getComputedStyle(a);
	if (!a.matches(':focus-visible')) return 'focus not visible on ' + a.tagName;
	if (s.outlineStyle === 'none' || parseFloat(s.outlineWidth) < 2) return 'no outline on ' + a.tagName;
	const lum = c => c.match(/[\d.]+/g).slice(0, 3).map(v => v / 255)
		.map(v => v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
		.reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
	const ratio = (x, y) => (Math.max(lum(x), lum(y)) + 0.05) / (Math.min(lum(x), lum(y)) + 0.05);
	const backgrounds = [getComputedStyle(document.documentElement).backgroundColor, 'rgb(255, 255, 255)'];
	const rings = [s.outlineColor].concat(s.boxShadow.match(/rgba?\([^)]*\)/g) || []);
	const best = Math.max(...rings.map(r => Math.min(...backgrounds.map(bg => ratio(r, bg)))));
	if (best < 3) return 'focus ring ' + rings.join(' / ') + ' on ' + a.tagName + ' has ' + best.toFixed(2) + ':1 against the background, want 3:1';
	return 'ok';
})()`

// TestBrowserLoginProfileSessionsLogout drives the whole flow in headless
// Chromium against the real service on a real redis-server, and checks
// every page a person can reach, signed out and in, with axe-core at 375
// and 1280 px (checkPage). Screenshots go to t.ArtifactDir(): keep them with
//
//	go test -run TestBrowser -artifacts -outputdir /tmp/shots ./cmd/profilecache
func TestBrowserLoginProfileSessionsLogout(t *testing.T) {
	e := startE2EOn(t, redistest.Start(t), map[string]string{
		"LOGIN_ACCOUNT_BURST": "2",         // the third wrong password shows the 429 page
		"PROFILE_FRESH":       "orders=1s", // the orders go stale quickly: the Profile-Stale note
	})
	axe := browsertest.LoadAxe(t) // before Chromium: a missing axe-core fails at once
	b := &tab{t: t, ctx: browsertest.New(t), dir: t.ArtifactDir(), axe: axe}
	defer func() { t.Logf("axe-core %s checked %d pages × widths: %v", b.axe.Version, len(b.checked), b.checked) }()
	b.do("set the viewport", chromedp.EmulateViewport(laptopWidth, viewHeight))

	// Anonymous: the profile sends us to the login page.
	resp := b.navigate("open /profile", chromedp.Navigate(e.url+"/profile"))
	if got := b.path(); resp.Status != 200 || got != "/login" {
		t.Fatalf("anonymous /profile ended on %s with %d, want the login page", got, resp.Status)
	}
	b.do("wait for the login form", chromedp.WaitVisible(chromedp.CSS("#login-form")))
	unlabelled := runStep(b, "check labels", chromedp.Evaluate[[]string](`
		Array.from(document.querySelectorAll('form input:not([type=hidden]), form select, form textarea'))
		  .filter(i => !i.labels || i.labels.length === 0 || !i.labels[0].textContent.trim())
		  .map(i => i.name || i.id)`))
	if len(unlabelled) > 0 {
		t.Errorf("login form fields without a label: %v", unlabelled)
	}
	b.checkNoScript("login page")
	b.checkPage("login")

	// Keyboard focus is visible: Tab to the first control and look at it.
	b.do("press Tab", chromedp.KeyEvent(kb.Tab))
	if focus := runStep(b, "inspect the focused element", chromedp.Evaluate[string](focusCheck)); focus != "ok" {
		t.Errorf("keyboard focus: %s", focus)
	}

	b.checkSignedOutErrors(e)

	// Log in through the form, as a person would: type, then click.
	b.navigate("open the login page", chromedp.Navigate(e.url+"/login"))
	b.do("fill the form",
		chromedp.SendKeys(chromedp.CSS("#email"), "alice@example.com"),
		chromedp.SendKeys(chromedp.CSS("#password"), "alice-secret"),
	)
	resp = b.navigate("submit the login form", chromedp.Click(chromedp.CSS("#login-submit")))
	if got := b.path(); resp.Status != 200 || got != "/profile" {
		t.Fatalf("after login: %s with %d, want /profile with 200", got, resp.Status)
	}
	b.do("wait for the profile", chromedp.WaitVisible(chromedp.CSS("#orders")))
	if got, want := strings.TrimSpace(b.text("#user-name")), "Alice Zoë Ångström"; got != want {
		t.Errorf("#user-name = %q, want %q", got, want)
	}
	orders := b.text("#orders")
	if !strings.Contains(orders, "ORD-1-000025") || strings.Contains(orders, "ORD-1-000005") {
		t.Errorf("orders on page 1:\n%s\nwant ORD-1-000025 and not ORD-1-000005", orders)
	}
	b.checkNoScript("profile page")
	b.checkPage("profile")

	// The next page of orders.
	resp = b.navigate("click Next", chromedp.Click(chromedp.CSS("#orders-next")))
	if resp.Status != 200 {
		t.Fatalf("orders page 2: status %d", resp.Status)
	}
	b.do("wait for page 2", chromedp.WaitVisible(chromedp.CSS("#orders-prev")))
	if got := b.text("#orders-page"); !strings.Contains(got, "Page 2") {
		t.Errorf("pager says %q, want page 2", got)
	}
	orders = b.text("#orders")
	if !strings.Contains(orders, "ORD-1-000005") || strings.Contains(orders, "ORD-1-000006") {
		t.Errorf("orders on page 2:\n%s\nwant ORD-1-000005 and not ORD-1-000006", orders)
	}
	b.checkPage("profile-page-2")
	b.checkStaleProfile(e)

	// A second session (another device), so that the list has a revoke button.
	wantStatus(t, e.login(e.browser(), "alice@example.com", "alice-secret"), http.StatusSeeOther)

	// The session list shows this browser.
	resp = b.navigate("open the session list", chromedp.Click(chromedp.CSS("#sessions-link")))
	if got := b.path(); resp.Status != 200 || got != "/sessions" {
		t.Fatalf("session list: %s with %d", got, resp.Status)
	}
	b.do("wait for the sessions", chromedp.WaitVisible(chromedp.CSS("#sessions")))
	if got := b.text("#this-device"); !strings.Contains(got, "This device") {
		t.Errorf("#this-device = %q", got)
	}
	if got := b.text("#sessions"); !strings.Contains(got, "HeadlessChrome") && !strings.Contains(got, "Chrom") {
		t.Errorf("the session list does not name this browser:\n%s", got)
	}
	b.checkNoScript("sessions page")
	b.checkPage("sessions")
	if n := runStep(b, "count revoke buttons", chromedp.Evaluate[int](`document.querySelectorAll('button.revoke').length`)); n != 1 {
		t.Errorf("%d revoke buttons, want 1 (the other session)", n)
	}
	b.expectError("a missing page, signed in", 404, chromedp.Navigate(e.url+"/no-such-page"))
	b.checkPage("404-signed-in")
	b.navigate("back to the sessions", chromedp.Navigate(e.url+"/sessions"))

	// Log out: back on the login page, and the profile is closed again.
	resp = b.navigate("log out", chromedp.Click(chromedp.CSS("#logout")))
	if got := b.path(); resp.Status != 200 || got != "/login" {
		t.Fatalf("after logout: %s with %d, want /login", got, resp.Status)
	}
	b.do("wait for the login form", chromedp.WaitVisible(chromedp.CSS("#login-form")))
	b.navigate("open /profile again", chromedp.Navigate(e.url+"/profile"))
	if got := b.path(); got != "/login" {
		t.Errorf("/profile after logout ended on %s, want /login", got)
	}
}
