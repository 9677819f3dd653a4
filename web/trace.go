package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// A request's server span carries its method, route template and status,
// nothing the client chose beyond a known method: no raw path, no query, no
// header, so no token, cookie or CSRF value can reach it. A request that
// matched no route is named by its method alone (the OpenTelemetry HTTP
// conventions' rule), and an unknown method is "HTTP".

// startSpan starts the request's server span, a child of the caller's
// traceparent, and puts it in the request's context; nil when tracing is
// off. It runs after routing, so c.Path() is the route template.
func (s *Server) startSpan(c echo.Context, routes map[string]bool) trace.Span {
	if s.cfg.Tracer == nil {
		return nil
	}
	req := c.Request()
	ctx := req.Context()
	if s.cfg.Propagator != nil {
		ctx = s.cfg.Propagator.Extract(ctx, propagation.HeaderCarrier(req.Header))
	}
	method := methodLabel(req.Method)
	name, attrs := method, make([]trace.SpanStartOption, 0, 3)
	if method == "OTHER" {
		name = "HTTP"
		method = "_OTHER"
	}
	attrs = append(attrs, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(semconv.HTTPRequestMethodKey.String(method)))
	if route := c.Path(); routes[route] {
		name += " " + route
		attrs = append(attrs, trace.WithAttributes(semconv.HTTPRoute(route)))
	}
	ctx, span := s.cfg.Tracer.Start(ctx, name, attrs...)
	c.SetRequest(req.WithContext(ctx))
	return span
}

// endSpan ends a server span with the response's status: a 5xx is an
// error of the server, a 4xx is the client's and not (the HTTP
// conventions' rule for server spans).
func endSpan(span trace.Span, status int) {
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	if status >= http.StatusInternalServerError {
		span.SetStatus(codes.Error, "")
	}
	span.End()
}
