package session_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/profilecache/profilecache/internal/sessiontest"
	"github.com/profilecache/profilecache/profile"
	"github.com/profilecache/profilecache/session"
)

// The examples run against a real redis-server (sessiontest.Main), in
// which sessiontest.SignIn makes the sessions a login on profilecache
// would make.
func TestMain(m *testing.M) { os.Exit(sessiontest.Main(m)) }

// A net/http service behind session.Validator.Middleware: a browser that
// signed in on profilecache gets in with its cookie, anyone else gets 401.
func Example() {
	v, err := session.New(session.Config{
		RedisURL: sessiontest.RedisURL(),     // profilecache's REDIS_URL
		Secret:   []byte(sessiontest.Secret), // profilecache's SESSION_SECRET
	})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		id, _ := session.FromContext(r.Context())
		basic, err := v.Basic(r.Context(), id.UserID)
		if err != nil {
			http.Error(w, "profile not available", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "Hello, %s!", basic.FirstName)
	})
	srv := httptest.NewServer(v.Middleware(mux))
	defer srv.Close()

	login := signIn("alice@example.com", "alice-secret") // a login on profilecache
	fmt.Println(get(srv.URL+"/hello", &http.Cookie{Name: "pc_session", Value: login.Token}))
	fmt.Println(get(srv.URL+"/hello", nil))
	// Output:
	// 200 Hello, Alice Zoë!
	// 401 {"error":"authentication required"}
}

// Validate checks a request by hand (here an API client's Bearer token),
// and Read returns a page of the user's cached orders.
func ExampleValidator_Read() {
	v, err := session.New(session.Config{RedisURL: sessiontest.RedisURL(), Secret: []byte(sessiontest.Secret)})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	login := signIn("alice@example.com", "alice-secret")
	req := httptest.NewRequest("GET", "/my-orders", nil)
	req.Header.Set("Authorization", "Bearer "+login.Token)

	ctx := context.Background()
	id, err := v.Validate(ctx, req)
	if err != nil {
		log.Fatal(err)
	}
	view, err := v.Read(ctx, id.UserID, profile.Query{Orders: &profile.Page{Offset: 0, Limit: 3}})
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range view.Orders.Items {
		fmt.Println(o.Number, o.Status, o.Date.Format("2006-01-02"))
	}
	fmt.Println("of", view.Orders.Total)
	// Output:
	// ORD-1-000025 placed 2026-10-01
	// ORD-1-000024 delivered 2026-10-01
	// ORD-1-000023 cancelled 2026-09-30
	// of 25
}

// signIn logs in on the stand-in profilecache.
func signIn(email, password string) sessiontest.Login {
	l, err := sessiontest.SignIn(email, password)
	if err != nil {
		log.Fatal(err)
	}
	return l
}

// get returns the status and body of a GET with cookie, if not nil.
func get(url string, cookie *http.Cookie) string {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		log.Fatal(err)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
}
