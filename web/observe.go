package web

import (
	"crypto/rand"
	"encoding/base32"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/internal/logctx"
)

// routeUnmatched is the route label of requests that matched no route, so
// that scanners probing random paths cannot blow up the metric's
// cardinality.
const routeUnmatched = "unmatched"

// observe times (and traces, trace.go) every request once, then reports it to
// Config.ObserveRequest with its route template (c.Path(), never the raw
// path), method and final status, and writes the request log line. routes
// is filled in once the routes are registered, before serving.
//
// It replaces echo's RequestLogger so that a request reads the clock twice
// rather than four times and its log line skips slog's caller lookup
// (Logger.LogAttrs always walks the stack for the source position).
func (s *Server) observe(routes map[string]bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			span := s.startSpan(c, routes)
			err := next(c)
			if err != nil {
				// Answer now so the status is final; handleError runs once.
				c.Error(err)
			}
			end := time.Now()
			if s.cfg.ObserveRequest != nil {
				route := c.Path()
				if !routes[route] {
					route = routeUnmatched
				}
				s.cfg.ObserveRequest(route, methodLabel(c.Request().Method), c.Response().Status, end.Sub(start))
			}
			if !isProbe(c) {
				s.logRequest(c, end, end.Sub(start))
			}
			if span != nil {
				endSpan(span, c.Response().Status)
			}
			return err
		}
	}
}

// logRequest writes the request log line.
func (s *Server) logRequest(c echo.Context, end time.Time, latency time.Duration) {
	req := c.Request()
	ctx := req.Context()
	h := s.log.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	r := slog.NewRecord(end, slog.LevelInfo, "request", 0)
	r.AddAttrs(
		slog.String("method", req.Method),
		slog.String("path", req.URL.Path),
		slog.String("route", c.Path()),
		slog.Int("status", c.Response().Status),
		slog.Duration("latency", latency),
		slog.String("remote_ip", c.RealIP()),
		slog.String(logctx.Key, logctx.RequestID(ctx)),
	)
	_ = h.Handle(ctx, r) // nowhere to report a failed log write
}

// methodLabel keeps client-chosen method names out of the labels.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// routeSet is the set of registered route templates.
func routeSet(e *echo.Echo) map[string]bool {
	set := make(map[string]bool)
	for _, r := range e.Routes() {
		set[r.Path] = true
	}
	return set
}

// maxRequestIDLen bounds an incoming X-Request-Id: it is logged on every
// line of the request and forwarded to the CRM.
const maxRequestIDLen = 128

// requestID gives every request an id: the client's X-Request-Id when it
// is short printable ASCII (so that a client can neither bloat every log
// line nor smuggle control characters into them), a fresh one otherwise. The
// id goes back in the response header and into the request's context, where
// logctx's slog handler finds it for every line logged with that context,
// in web and in the services it calls.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		id := req.Header.Get(echo.HeaderXRequestID)
		if id == "" || !validRequestID(id) {
			id = s.ids.next()
		}
		c.Response().Header()[echo.HeaderXRequestID] = []string{id}
		c.SetRequest(req.WithContext(logctx.WithRequestID(req.Context(), id)))
		return next(c)
	}
}

// requestIDs makes request ids: a random prefix per process and a counter.
// They are unique across instances with overwhelming probability and cost
// a fraction of 32 random characters per request. Request ids are not
// secrets: anyone may send one.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return &requestIDs{prefix: strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))}
}

func (g *requestIDs) next() string {
	var buf [32]byte
	b := append(buf[:0], g.prefix...)
	b = append(b, '-')
	return string(strconv.AppendUint(b, g.n.Add(1), 36))
}

func validRequestID(id string) bool {
	if len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}
