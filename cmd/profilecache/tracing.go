package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/profilecache/profilecache/profile"
)

// Tracing (docs/tracing.md) is configured by the OpenTelemetry SDK's own
// environment variables only, which the SDK and autoexport read themselves:
// OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL,
// OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER(_ARG), OTEL_RESOURCE_ATTRIBUTES,
// OTEL_TRACES_EXPORTER. With nothing configured, nothing is installed: no
// exporter, no goroutine, and every hook below is nil, which the packages
// take as "no spans" at the cost of a nil check.

// tracerName is the instrumentation scope of profilecache's own spans.
const tracerName = "github.com/profilecache/profilecache"

// tracing is what newApp plugs in. Its zero value is tracing off.
type tracing struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

// tracingConfigured says whether the environment asks for traces: an
// exporter named (other than "none"), or an OTLP endpoint for autoexport's
// default, OTLP. A service name or a sampler alone exports nothing.
func tracingConfigured(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	switch strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")) {
	case "none":
		return false
	case "":
		return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	}
	return true
}

// newTracing sets tracing up from the environment, or returns tracing off.
func newTracing(ctx context.Context, logger *slog.Logger) (*tracing, error) {
	if !tracingConfigured(os.Getenv) {
		return &tracing{}, nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: exporter: %w", err)
	}
	// The default service name first: OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES (WithFromEnv) override it.
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceName("profilecache")),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	// The sampler comes from OTEL_TRACES_SAMPLER(_ARG), parent-based
	// always-on by default; the batcher from OTEL_BSP_*.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("tracing: export failed", "err", err)
	}))
	logger.Info("tracing on", "exporter", fmt.Sprintf("%T", exp), "service", serviceName(res))
	return &tracing{
		tp:     tp,
		tracer: tp.Tracer(tracerName),
		prop:   propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}, nil
}

func serviceName(res *resource.Resource) string {
	v, _ := res.Set().Value(semconv.ServiceNameKey)
	return v.AsString()
}

// shutdown flushes the spans not yet exported and stops the exporter.
func (t *tracing) shutdown(logger *slog.Logger) {
	if t.tp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.tp.Shutdown(ctx); err != nil {
		logger.Warn("tracing: shutdown", "err", err)
	}
}

// forceFlush exports every ended span now (tests).
func (t *tracing) forceFlush(ctx context.Context) error {
	if t.tp == nil {
		return nil
	}
	return t.tp.ForceFlush(ctx)
}

// profileTracer is profile.Tracer on OpenTelemetry; nil when off.
func (t *tracing) profileTracer() profile.Tracer {
	if t.tp == nil {
		return nil
	}
	return otelProfileTracer{t.tracer}
}

// crmTransport wraps the CRM client's transport in otelhttp's: a client
// span per attempt, and traceparent sent to the CRM. Nil when off.
func (t *tracing) crmTransport() func(http.RoundTripper) http.RoundTripper {
	if t.tp == nil {
		return nil
	}
	return func(rt http.RoundTripper) http.RoundTripper {
		return otelhttp.NewTransport(rt, otelhttp.WithTracerProvider(t.tp), otelhttp.WithPropagators(t.prop),
			otelhttp.WithSpanNameFormatter(crmSpanName))
	}
}

// crmSpanName names a CRM call by its method and path with the user id
// replaced: "GET /crm/v1/users/{id}/orders".
func crmSpanName(_ string, r *http.Request) string {
	segs := strings.Split(r.URL.Path, "/")
	for i, s := range segs {
		if uuid.Validate(s) == nil {
			segs[i] = "{id}"
		}
	}
	return r.Method + " " + strings.Join(segs, "/")
}

// sectionKey is the attribute naming the profile section a span is about.
const sectionKey = attribute.Key("profilecache.section")

type otelProfileTracer struct{ t trace.Tracer }

func (o otelProfileTracer) Start(ctx context.Context, name, section string) (context.Context, func(error)) {
	return o.start(ctx, name, section)
}

// Linked starts background spans in a trace of their own, linked to the
// span of the request that started the work.
func (o otelProfileTracer) Linked(req context.Context) func(context.Context, string, string) (context.Context, func(error)) {
	sc := trace.SpanContextFromContext(req)
	return func(ctx context.Context, name, section string) (context.Context, func(error)) {
		opts := []trace.SpanStartOption{trace.WithNewRoot()}
		if sc.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
		}
		return o.start(ctx, name, section, opts...)
	}
}

// start starts a span; its end marks a failure without the error's text,
// which may name a URL or a user.
func (o otelProfileTracer) start(ctx context.Context, name, section string, opts ...trace.SpanStartOption) (context.Context, func(error)) {
	if section != "" {
		opts = append(opts, trace.WithAttributes(sectionKey.String(section)))
	}
	ctx, span := o.t.Start(ctx, name, opts...)
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, "failed")
		}
		span.End()
	}
}

// closeAfter returns close followed by shutdown: spans ended by close (a
// background reload's) are exported too.
func (t *tracing) closeAfter(close func(), logger *slog.Logger) func() {
	return func() { close(); t.shutdown(logger) }
}
