package web

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/profile"
)

// pageNames are the page templates; each is parsed together with
// templates/layout.html into its own set, so pages cannot clash on the
// "content" block they all define.
var pageNames = []string{"login", "profile", "sessions", "error"}

// parsePages parses one template set per page from fsys.
func parsePages(fsys fs.FS, funcs template.FuncMap) (map[string]*template.Template, error) {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(fsys, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: parse template %s: %w", name, err)
		}
		if t.Lookup("layout") == nil || t.Lookup("content") == nil {
			return nil, fmt.Errorf("web: template %s: needs a layout and a content block", name)
		}
		pages[name] = t
	}
	return pages, nil
}

// renderer plugs the page templates into echo's c.Render.
type renderer struct{ s *Server }

// Render implements echo.Renderer. The page is executed into a buffer first,
// so a template error never sends half a page.
func (r renderer) Render(w io.Writer, name string, data any, _ echo.Context) error {
	b, err := r.s.renderBytes(name, data)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (s *Server) renderBytes(name string, data any) ([]byte, error) {
	t, ok := s.pages[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", errNoTemplate, name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return nil, fmt.Errorf("web: render %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

func (s *Server) templateFuncs() template.FuncMap {
	return template.FuncMap{
		"styleURL":   func() string { return s.styleURL },
		"money":      formatMoney,
		"date":       formatDate,
		"datetime":   formatDateTime,
		"device":     describeDevice,
		"pathEscape": url.PathEscape,
	}
}

// basePage is embedded in every page struct.
type basePage struct {
	Title string
	// CSRF goes into every form's hidden _csrf field: the session's token
	// on signed-in pages, the login token on the login form (csrf.go).
	CSRF string
	// UserName is shown in the header of signed-in pages; empty on
	// anonymous ones, which then have no account menu.
	UserName string
}

func (s *Server) newBasePage(c echo.Context, title string) basePage {
	return basePage{Title: title, CSRF: s.sessionToken(c)}
}

type loginPage struct {
	basePage
	Email string // as typed, so a mistyped password need not mean retyping it
	Error string
}

type profilePage struct {
	basePage
	Basic     profile.Basic
	Interests []string
	Orders    profile.Slice[profile.Order]
	Pager     pagination
	Invoices  profile.Slice[profile.Invoice]
	Inquiries profile.Slice[profile.Inquiry]
	// Stale is the sections shown past their freshness window, as one
	// string ("orders, invoices"); empty when all are fresh.
	Stale string
}

type sessionsPage struct {
	basePage
	Sessions []sessionRow
}

type sessionRow struct {
	ID        string
	UserAgent string
	Created   time.Time
	LastSeen  time.Time
	Current   bool
}

type errorPage struct {
	basePage
	Status  int
	Heading string
	Message string
}

// pagination is the view model of the order pager.
type pagination struct {
	Page, Pages      int
	PrevURL, NextURL string // empty when there is no such page
}

func newPagination(path string, page, perPage, total int) pagination {
	pages := max(1, (total+perPage-1)/perPage)
	p := pagination{Page: page, Pages: pages}
	if page > 1 {
		// Past the end, "previous" leads back to the last real page.
		p.PrevURL = pageURL(path, min(page-1, pages))
	}
	if page < pages {
		p.NextURL = pageURL(path, page+1)
	}
	return p
}

func pageURL(path string, page int) string {
	return path + "?page=" + strconv.Itoa(page)
}

// displayName is the name in the page header; never empty, since an empty
// name would hide the account menu.
func displayName(b profile.Basic) string {
	if n := strings.TrimSpace(b.Name()); n != "" {
		return n
	}
	if b.Email != "" {
		return b.Email
	}
	return "your account"
}

// formatAmount writes minor units as a decimal string: 14990 -> "149.90".
// Every currency the backend uses has two decimals.
func formatAmount(m profile.Money) string {
	var buf [24]byte // "-" + 20 digits + "." + 2: one allocation, for the string
	return string(appendAmount(buf[:0], m))
}

// appendAmount appends formatAmount(m).
func appendAmount(dst []byte, m profile.Money) []byte {
	u := uint64(m)
	if m < 0 {
		u = -u // two's complement: also right for math.MinInt64
		dst = append(dst, '-')
	}
	dst = strconv.AppendUint(dst, u/100, 10)
	return append(dst, '.', byte('0'+u%100/10), byte('0'+u%10))
}

// formatMoney is the human form: "149.90 EUR".
func formatMoney(m profile.Money, currency string) string {
	if currency == "" {
		return formatAmount(m)
	}
	return formatAmount(m) + " " + currency
}

// formatDate is the human date: "2 Jan 2026".
func formatDate(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Format("2 Jan 2006")
}

// formatDateTime is the human time of a session event, in UTC because the
// server does not know the reader's zone.
func formatDateTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2 Jan 2006, 15:04 UTC")
}

// describeDevice turns a User-Agent into something a person recognises,
// such as "Firefox on Linux". It only needs to be good enough to tell one's
// own devices apart; the full string is shown next to it.
func describeDevice(ua string) string {
	if strings.TrimSpace(ua) == "" {
		return "Unknown device"
	}
	has := func(s string) bool { return strings.Contains(ua, s) }
	var browser string
	switch {
	case has("Edg/"):
		browser = "Edge"
	case has("OPR/"):
		browser = "Opera"
	case has("Firefox/"), has("FxiOS/"):
		browser = "Firefox"
	case has("Chrome/"), has("CriOS/"):
		browser = "Chrome"
	case has("Safari/") && has("Version/"):
		browser = "Safari"
	case strings.HasPrefix(ua, "curl/"):
		browser = "curl"
	case strings.HasPrefix(ua, "Go-http-client/"):
		browser = "Go program"
	}
	var system string
	switch {
	case has("iPhone"):
		system = "iPhone"
	case has("iPad"):
		system = "iPad"
	case has("Android"):
		system = "Android"
	case has("Windows"):
		system = "Windows"
	case has("Macintosh"), has("Mac OS X"):
		system = "macOS"
	case has("CrOS"):
		system = "ChromeOS"
	case has("Linux"):
		system = "Linux"
	}
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	case system != "":
		return "Browser on " + system
	}
	return truncate(ua, 40)
}

// truncate cuts s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// errNoTemplate is returned for a page name that New did not parse.
var errNoTemplate = errors.New("web: no such page template")
