// Package docs holds the API document, docs/openapi.yaml, and embeds it as
// JSON so that the server can serve it at GET /api/openapi.json.
//
// openapi.yaml is the one document people edit. openapi.json is generated
// from it (go generate ./docs), and TestOpenAPIJSONIsTheYAML fails until
// the two agree, so the binary serves the JSON without a YAML library.
package docs

import _ "embed"

//go:generate go test . -run TestOpenAPIJSONIsTheYAML -args -update

// OpenAPIJSON is openapi.yaml as JSON.
//
//go:embed openapi.json
var OpenAPIJSON string
