package profile

import "context"

// Names of the spans the service starts through Options.Tracer.
const (
	SpanLoad          = "profile.load"             // a full profile load from the backend
	SpanLockWait      = "profile.wait_reload_lock" // waiting for another owner's reload
	SpanSectionReload = "profile.reload_section"   // one section reloaded (in a request, or in the background)
)

// Tracer traces the service's own work when Options.Tracer is set. The
// domain knows no tracing library: cmd adapts OpenTelemetry to it, and the
// spans the adapters start (Redis, the CRM) nest in these through ctx.
type Tracer interface {
	// Start starts a span named name in ctx's trace; section, when not
	// "", is the profile section the work is about. end ends the span with
	// the work's error.
	Start(ctx context.Context, name, section string) (_ context.Context, end func(error))
	// Linked captures ctx's span for background work that ctx's request
	// starts: start begins a span in a new trace, in the background work's
	// own context, linked to the captured one.
	Linked(ctx context.Context) (start func(ctx context.Context, name, section string) (context.Context, func(error)))
}

// span starts a span when a Tracer is set; end is never nil.
func (s *Service) span(ctx context.Context, name, section string) (context.Context, func(error)) {
	if s.opts.Tracer == nil {
		return ctx, endNothing
	}
	return s.opts.Tracer.Start(ctx, name, section)
}

func endNothing(error) {}

// linkedSpan captures req's span for a background task (Tracer.Linked).
func (s *Service) linkedSpan(req context.Context) func(context.Context, string, string) (context.Context, func(error)) {
	if s.opts.Tracer == nil {
		return func(ctx context.Context, _, _ string) (context.Context, func(error)) { return ctx, endNothing }
	}
	return s.opts.Tracer.Linked(req)
}
