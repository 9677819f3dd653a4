package web

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/docs"
)

// routeOpenAPI serves the API document (docs/openapi.yaml, as JSON). It
// needs no session: the document is the same for everyone.
const routeOpenAPI = "/api/openapi.json"

// apiDocument is the served document with its validator: the document
// changes only with the binary, so a client may keep it for an hour and
// then revalidate it cheaply.
type apiDocument struct {
	body []byte
	etag string
}

func newAPIDocument() apiDocument {
	sum := sha256.Sum256([]byte(docs.OpenAPIJSON))
	return apiDocument{
		body: []byte(docs.OpenAPIJSON),
		etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`,
	}
}

const openAPICacheControl = "public, max-age=3600"

func (s *Server) handleOpenAPI(c echo.Context) error {
	h := c.Response().Header()
	h.Set(echo.HeaderCacheControl, openAPICacheControl) // replaces the API's no-store
	h.Set("ETag", s.apiDoc.etag)
	if etagMatches(c.Request().Header.Get("If-None-Match"), s.apiDoc.etag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, s.apiDoc.body)
}

// etagMatches is If-None-Match's weak comparison (RFC 9110 section
// 13.1.2) of the header's list against etag.
func etagMatches(header, etag string) bool {
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimPrefix(strings.TrimSpace(part), "W/")
		if part == "*" || part == etag {
			return true
		}
	}
	return false
}
