package crm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/profilecache/profilecache/internal/logctx"
	"github.com/profilecache/profilecache/profile"
)

// Defaults of Config.
const (
	DefaultTimeout      = 5 * time.Second
	DefaultMaxAttempts  = 3
	DefaultBaseBackoff  = 100 * time.Millisecond
	DefaultMaxBackoff   = 2 * time.Second
	DefaultMaxBodyBytes = 32 << 20 // carol's 10,000 orders are about 2 MiB
)

// Endpoint names, as OnRequest and OnRetry report them (a bounded set, fit
// for metric labels).
const (
	EndpointAuthenticate = "authenticate"
	EndpointBasic        = "basic"
	EndpointInterests    = "interests"
	EndpointOrders       = "orders"
	EndpointInvoices     = "invoices"
	EndpointInquiries    = "inquiries"
)

// Outcomes of one attempt that got no HTTP status, as OnRequest reports them.
const (
	OutcomeTimeout = "timeout"
	OutcomeError   = "error"
)

// Config configures a Client. BaseURL is required.
type Config struct {
	// BaseURL is BACKEND_URL: http(s)://host[:port][/prefix]. Required.
	BaseURL string
	// Token, when set, is sent as Authorization: Bearer <Token>.
	Token string
	// Timeout bounds one attempt, body included. Default DefaultTimeout.
	// The caller's context bounds all attempts together.
	Timeout time.Duration
	// MaxAttempts bounds the attempts of one GET, the first included.
	// Default DefaultMaxAttempts; 1 disables retries.
	MaxAttempts int
	// BaseBackoff is the wait before the second attempt; it doubles per
	// attempt up to MaxBackoff, and each wait is drawn from [d/2, d].
	// Defaults DefaultBaseBackoff and DefaultMaxBackoff.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// MaxBodyBytes bounds a response body. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// HTTPClient sends the requests. Default: a client of its own that
	// does not follow redirects (a redirect is an unexpected status).
	HTTPClient *http.Client
	// WrapTransport, when set, wraps the default client's transport
	// (cmd: otelhttp's, which traces every attempt and sends traceparent).
	// Not used with HTTPClient.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// OnRequest, when set, observes every attempt: its endpoint, its HTTP
	// status as a string ("200", "503") or OutcomeTimeout / OutcomeError,
	// and its duration.
	OnRequest func(endpoint, outcome string, d time.Duration)
	// OnRetry, when set, observes every retry of endpoint.
	OnRetry func(endpoint string)
	// Logger receives retries (Warn). Default slog.Default().
	Logger *slog.Logger
}

// Client is the HTTP CRM backend. It is safe for concurrent use.
type Client struct {
	base *url.URL
	cfg  Config
	log  *slog.Logger
}

var _ profile.Backend = (*Client)(nil)

// New checks cfg and fills in defaults.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("crm: base URL %q: want http(s)://host[:port][/path], without query", redact(cfg.BaseURL))
	}
	if cfg.Timeout < 0 || cfg.MaxAttempts < 0 || cfg.BaseBackoff < 0 || cfg.MaxBackoff < 0 || cfg.MaxBodyBytes < 0 {
		return nil, errors.New("crm: config: negative timeout, attempts, backoff or body limit")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.BaseBackoff == 0 {
		cfg.BaseBackoff = DefaultBaseBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.BaseBackoff)
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// A profile load is five parallel GETs; many users load at once.
		tr.MaxIdleConnsPerHost = 64
		var rt http.RoundTripper = tr
		if cfg.WrapTransport != nil {
			rt = cfg.WrapTransport(tr)
		}
		cfg.HTTPClient = &http.Client{
			Transport: rt,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Client{base: u, cfg: cfg, log: cfg.Logger}, nil
}

// redact hides a password in a URL for error messages and logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// Authenticate implements profile.Backend: POST /authenticate, never
// retried.
func (c *Client) Authenticate(ctx context.Context, email, password string) (uuid.UUID, error) {
	payload, err := json.Marshal(struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}{email, password})
	if err != nil {
		return uuid.Nil, fmt.Errorf("crm: authenticate: encode: %w", err)
	}
	u := c.base.JoinPath("authenticate")
	rep, err := c.roundTrip(ctx, EndpointAuthenticate, http.MethodPost, u, payload)
	if err == nil && rep.status == http.StatusUnauthorized {
		return uuid.Nil, profile.ErrInvalidCredentials
	}
	if err == nil {
		err = checkStatus(rep.status)
	}
	if err != nil {
		return uuid.Nil, fmt.Errorf("crm: POST %s: %w", u.Path, err)
	}
	var out struct {
		UserID *string `json:"user_id"`
	}
	if err := decode(rep.body, &out); err != nil {
		return uuid.Nil, fmt.Errorf("crm: POST %s: %w", u.Path, err)
	}
	if out.UserID == nil {
		return uuid.Nil, fmt.Errorf("crm: POST %s: %w: missing field \"user_id\"", u.Path, profile.ErrBadBackendResponse)
	}
	id, err := parseUserID(*out.UserID)
	if err != nil {
		return uuid.Nil, fmt.Errorf("crm: POST %s: %w: user_id: %w", u.Path, profile.ErrBadBackendResponse, err)
	}
	return id, nil
}

func parseUserID(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil || id == uuid.Nil || id.String() != strings.ToLower(s) {
		return uuid.Nil, fmt.Errorf("%q is not a user id (a canonical, non-nil uuid)", s)
	}
	return id, nil
}

// reply is what one attempt got back. body is read only for 200.
type reply struct {
	status     int
	body       []byte
	retryAfter time.Duration
}

// newRequest builds one attempt's request: the payload as JSON, the bearer
// token, and the request id of the request that caused it.
func (c *Client) newRequest(ctx context.Context, method string, u *url.URL, payload []byte) (*http.Request, error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "profilecache")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	if id := logctx.RequestID(ctx); id != "" {
		req.Header.Set("X-Request-Id", id)
	}
	return req, nil
}

// roundTrip makes one attempt. Its error wraps profile.ErrUnavailable for a
// transport failure (connect, timeout, reset while reading) and
// profile.ErrBadBackendResponse for an oversized body; any status is a
// reply, not an error.
func (c *Client) roundTrip(ctx context.Context, endpoint, method string, u *url.URL, payload []byte) (reply, error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := c.newRequest(actx, method, u, payload)
	if err != nil {
		return reply{}, err
	}
	start := time.Now()
	outcome := OutcomeError
	defer func() {
		if c.cfg.OnRequest != nil {
			c.cfg.OnRequest(endpoint, outcome, time.Since(start))
		}
	}()
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			outcome = OutcomeTimeout
			if ctx.Err() == nil { // this attempt's timeout, not the caller's
				err = fmt.Errorf("no answer within %s: %w", c.cfg.Timeout, err)
			}
		}
		return reply{}, fmt.Errorf("%w: %w", profile.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	rep := reply{status: resp.StatusCode, retryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused; the body of an
		// error is not part of the contract.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		outcome = strconv.Itoa(resp.StatusCode)
		return rep, nil
	}
	rep.body, err = io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxBodyBytes+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			outcome = OutcomeTimeout
		}
		return reply{}, fmt.Errorf("%w: read body: %w", profile.ErrUnavailable, err)
	}
	outcome = strconv.Itoa(resp.StatusCode)
	if int64(len(rep.body)) > c.cfg.MaxBodyBytes {
		return reply{}, fmt.Errorf("%w: response body exceeds %d bytes", profile.ErrBadBackendResponse, c.cfg.MaxBodyBytes)
	}
	return rep, nil
}

// checkStatus is nil for 200. 429 and 5xx are the CRM's temporary
// trouble (retryable); anything else breaks the contract.
func checkStatus(status int) error {
	switch {
	case status == http.StatusOK:
		return nil
	case status == http.StatusTooManyRequests || status >= 500:
		return fmt.Errorf("%w: status %d", profile.ErrUnavailable, status)
	}
	return fmt.Errorf("%w: unexpected status %d", profile.ErrBadBackendResponse, status)
}

// retryAfter parses a Retry-After in seconds; dates and junk count as none.
func retryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(min(n, 3600)) * time.Second
}

// userURL is the URL of GET /users/{id}/{endpoint}; path is its path, for
// errors and logs.
func (c *Client) userURL(userID uuid.UUID, endpoint string) *url.URL {
	return c.base.JoinPath("users", userID.String(), endpoint)
}

func (c *Client) path(userID uuid.UUID, endpoint string) string {
	return c.userURL(userID, endpoint).Path
}

// get fetches GET /users/{id}/{endpoint}, retrying what may pass.
func (c *Client) get(ctx context.Context, userID uuid.UUID, endpoint string) ([]byte, error) {
	u := c.userURL(userID, endpoint)
	for attempt := 1; ; attempt++ {
		rep, err := c.roundTrip(ctx, endpoint, http.MethodGet, u, nil)
		if err == nil {
			err = checkStatus(rep.status)
		}
		if err == nil {
			return rep.body, nil
		}
		if !errors.Is(err, profile.ErrUnavailable) || attempt >= c.cfg.MaxAttempts || ctx.Err() != nil {
			return nil, fmt.Errorf("crm: GET %s (attempt %d of %d): %w", u.Path, attempt, c.cfg.MaxAttempts, err)
		}
		wait := c.backoff(attempt, rep.retryAfter)
		c.log.WarnContext(ctx, "crm: retrying", "endpoint", endpoint, "user", userID,
			"attempt", attempt, "wait", wait.String(), "err", err)
		if c.cfg.OnRetry != nil {
			c.cfg.OnRetry(endpoint)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("crm: GET %s (after %d attempts): %w: %w (last: %w)",
				u.Path, attempt, profile.ErrUnavailable, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// backoff is the wait after the attempt-th failure: BaseBackoff doubling
// per attempt, capped at MaxBackoff, drawn from [d/2, d] so that many
// clients do not retry in lockstep; at least the server's Retry-After, up
// to MaxBackoff.
func (c *Client) backoff(attempt int, after time.Duration) time.Duration {
	d := c.cfg.BaseBackoff << min(attempt-1, 30)
	if d <= 0 || d > c.cfg.MaxBackoff {
		d = c.cfg.MaxBackoff
	}
	d = d/2 + rand.N(d/2+1)
	if after > d {
		d = min(after, c.cfg.MaxBackoff)
	}
	return d
}

// decode unmarshals a whole body; anything that is not exactly one JSON
// value of v's shape is an ErrBadBackendResponse.
func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: invalid JSON: %w", profile.ErrBadBackendResponse, err)
	}
	return nil
}
