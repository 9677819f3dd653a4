package openapitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// YAMLToJSON converts the YAML document y to indented JSON, keeping the
// order of its keys, so that the served JSON reads like the YAML (openapi
// first, paths in the document's order). It handles what an OpenAPI
// document uses: mappings, sequences, scalars and aliases.
func YAMLToJSON(y []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(y, &doc); err != nil {
		return nil, fmt.Errorf("openapitest: parse YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("openapitest: want one YAML document")
	}
	var raw bytes.Buffer
	if err := appendNode(&raw, doc.Content[0]); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("openapitest: indent JSON: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

func appendNode(b *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.AliasNode:
		return appendNode(b, n.Alias)
	case yaml.MappingNode:
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
				return fmt.Errorf("openapitest: line %d: only plain scalar keys are supported", k.Line)
			}
			appendString(b, k.Value)
			b.WriteByte(':')
			if err := appendNode(b, n.Content[i+1]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := appendNode(b, c); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case yaml.ScalarNode:
		return appendScalar(b, n)
	default:
		return fmt.Errorf("openapitest: line %d: unexpected YAML node kind %d", n.Line, n.Kind)
	}
	return nil
}

// appendScalar writes a scalar by its resolved tag: numbers and booleans
// stay numbers and booleans, as a YAML reader of the document sees them.
func appendScalar(b *bytes.Buffer, n *yaml.Node) error {
	switch n.ShortTag() {
	case "!!str", "!!binary", "!!timestamp":
		appendString(b, n.Value)
	case "!!null":
		b.WriteString("null")
	case "!!bool":
		var v bool
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("openapitest: line %d: %w", n.Line, err)
		}
		b.WriteString(strconv.FormatBool(v))
	case "!!int", "!!float":
		var v any
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("openapitest: line %d: %w", n.Line, err)
		}
		j, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("openapitest: line %d: %w", n.Line, err)
		}
		b.Write(j)
	default:
		return fmt.Errorf("openapitest: line %d: unsupported YAML tag %s", n.Line, n.Tag)
	}
	return nil
}

// appendString writes s as a JSON string, without escaping <, > and &:
// the document is served as application/json, never inside HTML.
func appendString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes; Encode adds a newline, which Indent drops
}
