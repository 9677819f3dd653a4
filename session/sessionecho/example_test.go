package sessionecho_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/internal/sessiontest"
	"github.com/profilecache/profilecache/session"
	"github.com/profilecache/profilecache/session/sessionecho"
)

func TestMain(m *testing.M) { os.Exit(sessiontest.Main(m)) }

// An echo service behind sessionecho.Middleware.
func ExampleMiddleware() {
	v, err := session.New(session.Config{
		RedisURL: sessiontest.RedisURL(),     // profilecache's REDIS_URL
		Secret:   []byte(sessiontest.Secret), // profilecache's SESSION_SECRET
	})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	e := echo.New()
	e.GET("/hello", func(c echo.Context) error {
		id, _ := sessionecho.Identity(c)
		basic, err := v.Basic(c.Request().Context(), id.UserID)
		if err != nil {
			return err
		}
		return c.String(http.StatusOK, "Hello, "+basic.FirstName+"!")
	}, sessionecho.Middleware(v))

	login, err := sessiontest.SignIn("bob@example.com", "bob-secret") // a login on profilecache
	if err != nil {
		log.Fatal(err)
	}
	for _, token := range []string{login.Token, ""} {
		req := httptest.NewRequest("GET", "/hello", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Body.String())
	}
	// Output:
	// 200 Hello, Bob!
	// 401 {"message":"Unauthorized"}
}
