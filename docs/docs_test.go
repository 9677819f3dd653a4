package docs_test

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"github.com/profilecache/profilecache/docs"
	"github.com/profilecache/profilecache/internal/openapitest"
)

var update = flag.Bool("update", false, "rewrite openapi.json from openapi.yaml")

// TestOpenAPIJSONIsTheYAML holds the embedded openapi.json to openapi.yaml,
// byte for byte; go generate ./docs rewrites it.
func TestOpenAPIJSONIsTheYAML(t *testing.T) {
	y, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want, err := openapitest.YAMLToJSON(y)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("openapi.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal([]byte(docs.OpenAPIJSON), want) {
		t.Fatal("docs/openapi.json is not docs/openapi.yaml as JSON: run go generate ./docs")
	}
}

// TestOpenAPIDocumentIsValid loads the document as the validating tests
// do, which checks it against OpenAPI 3.1 (references resolve, schemas and
// examples are well formed).
func TestOpenAPIDocumentIsValid(t *testing.T) {
	if _, err := openapitest.Load(); err != nil {
		t.Fatal(err)
	}
}
