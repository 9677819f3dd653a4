//go:build !linux

package redistest

import "testing"

// Pause is Linux-only here.
func (s *Server) Pause(tb testing.TB) { tb.Skip("redistest: Pause needs Linux") }

// Resume is Linux-only here.
func (s *Server) Resume(tb testing.TB) { tb.Skip("redistest: Resume needs Linux") }
