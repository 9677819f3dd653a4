package main

import (
	"context"
	"encoding/gob"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/profilecache/profilecache/profile"
)

// The two baselines run as child processes of the harness (the bench binary
// started again with "serve-bare" or "serve-blob"), like profilecache, so
// that all three servers get the same treatment from the OS.

// userHeader picks the demo user on the bare server, which has no auth.
const userHeader = "X-Bench-User"

// serveBare is the ceiling of the HTTP stack: echo v4 serving the same JSON
// as profilecache from memory, no auth, no Redis.
func serveBare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve-bare", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	users := map[string]*profile.Profile{}
	for _, name := range []string{"alice", "carol"} {
		p, err := profile.Fetch(ctx, profile.NewMockBackend(0), profile.DemoUserID(name+"@example.com"))
		if err != nil {
			return err
		}
		users[name] = p
	}
	user := func(c echo.Context) (*profile.Profile, error) {
		name := c.Request().Header.Get(userHeader)
		if name == "" {
			name = "alice"
		}
		p, ok := users[name]
		if !ok {
			return nil, echo.NewHTTPError(http.StatusUnauthorized, "unknown "+userHeader)
		}
		return p, nil
	}
	e := newEcho()
	e.GET("/api/me", func(c echo.Context) error {
		p, err := user(c)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, toBasicJSON(p.Basic))
	})
	e.GET("/api/me/orders", func(c echo.Context) error {
		p, err := user(c)
		if err != nil {
			return err
		}
		return ordersPage(c, p.Orders)
	})
	return serve(ctx, e, *addr)
}

// blobKey is where the blob server keeps the whole profile in the session.
const blobKey = "profile"

// serveBlob is classic server-side session state: echo v4 + scs v2 with its
// go-redis store. Login puts the whole profile into the session, which scs
// gob-encodes into one Redis string; every request loads and decodes all of
// it. With -idle-timeout, scs also writes the whole blob back on every
// request to slide the expiry.
func serveBlob(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve-blob", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	redisAddr := fs.String("redis", "127.0.0.1:6379", "Redis address")
	idle := fs.Duration("idle-timeout", 0, "scs IdleTimeout; 0 turns it off")
	if err := fs.Parse(args); err != nil {
		return err
	}
	gob.Register(profile.Profile{})
	rdb := redis.NewClient(&redis.Options{Addr: *redisAddr})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s: %w", *redisAddr, err)
	}
	b := blobServer{sm: newBlobSessions(rdb, *idle), backend: profile.NewMockBackend(0)}

	e := newEcho()
	e.Use(echo.WrapMiddleware(b.sm.LoadAndSave))
	e.POST("/api/login", b.login)
	e.GET("/api/me", b.me)
	e.GET("/api/me/orders", b.orders)
	return serve(ctx, e, *addr)
}

// newBlobSessions is scs on rdb, with profilecache's session lifetime and
// cookie name.
func newBlobSessions(rdb *redis.Client, idle time.Duration) *scs.SessionManager {
	sm := scs.New()
	sm.Store = goredisstore.New(rdb)
	sm.Lifetime = 12 * time.Hour // SESSION_MAX_AGE
	sm.IdleTimeout = idle
	sm.Cookie.Name = "session"
	sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		log.Printf("scs: %v", err)
		http.Error(w, `{"error":"internal error"}`, http.StatusInternalServerError)
	}
	return sm
}

// blobServer is serveBlob's handlers.
type blobServer struct {
	sm      *scs.SessionManager
	backend *profile.MockBackend
}

// login checks the password and puts the whole profile into a new session.
func (b blobServer) login(c echo.Context) error {
	var req struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := c.Bind(&req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	id, err := b.backend.Authenticate(ctx, req.Email, req.Password)
	if errors.Is(err, profile.ErrInvalidCredentials) {
		return echo.NewHTTPError(http.StatusUnauthorized, "invalid email or password")
	}
	if err != nil {
		return err
	}
	p, err := profile.Fetch(ctx, b.backend, id)
	if err != nil {
		return err
	}
	if err := b.sm.RenewToken(ctx); err != nil { // no fixation
		return err
	}
	b.sm.Put(ctx, blobKey, *p)
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// session is the profile in c's session; 401 without one.
func (b blobServer) session(c echo.Context) (profile.Profile, error) {
	p, ok := b.sm.Get(c.Request().Context(), blobKey).(profile.Profile)
	if !ok {
		return p, echo.NewHTTPError(http.StatusUnauthorized, "authentication required")
	}
	return p, nil
}

// me answers GET /api/me from the session.
func (b blobServer) me(c echo.Context) error {
	p, err := b.session(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toBasicJSON(p.Basic))
}

// orders answers GET /api/me/orders from the session.
func (b blobServer) orders(c echo.Context) error {
	p, err := b.session(c)
	if err != nil {
		return err
	}
	return ordersPage(c, p.Orders)
}

// newEcho is echo with JSON errors and a health check, and nothing else.
func newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		code, msg := http.StatusInternalServerError, "internal error"
		if he, ok := errors.AsType[*echo.HTTPError](err); ok {
			code, msg = he.Code, fmt.Sprint(he.Message)
		} else {
			log.Printf("error: %v", err)
		}
		if !c.Response().Committed {
			_ = c.JSON(code, errorJSON{Error: msg})
		}
	}
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	return e
}

func serve(ctx context.Context, h http.Handler, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ordersPage answers ?offset=&limit= as profilecache does (same defaults,
// bounds and JSON).
func ordersPage(c echo.Context, orders []profile.Order) error {
	offset, limit := 0, profile.DefaultLimit
	var err error
	if v := c.QueryParam("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return echo.NewHTTPError(http.StatusBadRequest, "bad offset")
		}
	}
	if v := c.QueryParam("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > profile.MaxLimit {
			return echo.NewHTTPError(http.StatusBadRequest, "bad limit")
		}
	}
	page := orders[min(offset, len(orders)):min(offset+limit, len(orders))]
	out := pageJSON[orderJSON]{Items: make([]orderJSON, 0, len(page)), Offset: offset, Limit: limit, Total: len(orders)}
	for _, o := range page {
		out.Items = append(out.Items, toOrderJSON(o))
	}
	return c.JSON(http.StatusOK, out)
}
