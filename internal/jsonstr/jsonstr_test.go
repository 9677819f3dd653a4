package jsonstr_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/profilecache/profilecache/internal/jsonstr"
)

var awkward = []string{
	"", "plain", `quote " backslash \ slash /`, "<script>&amp;</script>",
	"\x00\x01\x07\b\f\n\r\t\x1f\x7f", "line\u2028sep\u2029para", "bad \xff byte", "cut \xe2\x82",
	"\xed\xa0\x80 surrogate", "emoji 😀 and 中文", "Zoë Ångström",
}

// encodingJSON is what encoding/json writes for s.
func encodingJSON(t *testing.T, s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// slogJSON is what slog.JSONHandler writes for s, as a message.
func slogJSON(t *testing.T, s string) string {
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key != slog.MessageKey {
			return slog.Attr{}
		}
		return a
	}})
	r := slog.NewRecord(time.Time{}, slog.LevelInfo, s, 0)
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	out := strings.TrimSuffix(buf.String(), "}\n")
	return strings.TrimPrefix(out, `{"msg":`)
}

func TestAppend(t *testing.T) {
	for _, s := range awkward {
		if got, want := string(jsonstr.Append([]byte("x"), s, jsonstr.EncodingJSON)), "x"+encodingJSON(t, s); got != want {
			t.Errorf("EncodingJSON %q: %s, want %s", s, got, want)
		}
		if got, want := string(jsonstr.Append(nil, s, jsonstr.Slog)), slogJSON(t, s); got != want {
			t.Errorf("Slog %q: %s, want %s", s, got, want)
		}
	}
}
