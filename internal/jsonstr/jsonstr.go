// Package jsonstr appends Go strings as JSON strings, escaped exactly as
// the standard library does: encoding/json (HTML-safe) or log/slog's
// JSONHandler (not HTML-safe). The hand-written encoders of web and
// internal/jsonlog share it; its tests and theirs hold it to those two.
package jsonstr

import "unicode/utf8"

// Style names whose escaping rules Append follows.
type Style int

const (
	// EncodingJSON is encoding/json's: HTML-safe (<, > and & as \u003c,
	// \u003e and \u0026) and short forms for \b and \f.
	EncodingJSON Style = iota
	// Slog is log/slog's JSONHandler's: no HTML escaping, \u0008 and \u000c.
	Slog
)

// Append appends s, quoted and escaped in style. Both styles escape
// U+2028 and U+2029 and replace invalid UTF-8 with U+FFFD.
func Append(dst []byte, s string, style Style) []byte {
	const hex = "0123456789abcdef"
	escapeHTML := style == EncodingJSON
	safe := &plain
	if escapeHTML {
		safe = &htmlSafe
	}
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b', '\f':
				// encoding/json has short forms for these two; slog does not.
				if escapeHTML && c == '\b' {
					dst = append(dst, '\\', 'b')
				} else if escapeHTML {
					dst = append(dst, '\\', 'f')
				} else {
					dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
				}
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// plain and htmlSafe mark the ASCII bytes that need no escaping.
var plain, htmlSafe = func() (p, h [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		p[c] = c != '"' && c != '\\'
		h[c] = p[c] && c != '<' && c != '>' && c != '&'
	}
	return p, h
}()
