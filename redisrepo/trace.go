package redisrepo

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// A round trip's span records the command's name (the first command of a
// batch) and the batch size, never a key or a value: keys hold user and
// session ids, values hold profiles and session data. Its status names the
// error's kind (ErrorTimeout, ...), not Redis's message.

// tracedCall is a Redis call being traced; the zero value traces nothing.
type tracedCall struct {
	tracer trace.Tracer
	op     string // the first command's name
	start  time.Time
}

// trace begins tracing a call made with ctx: only when a Tracer is set
// and ctx's span records, so that unsampled requests cost one context
// lookup. The span itself is started once the reply is in, when it is
// known whether the call left the process (a cache hit gets no span). The
// command's name is read now: rueidis recycles a command once it is sent.
func (c *instrumented) trace(ctx context.Context, cmd []string) tracedCall {
	if c.h.Tracer == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return tracedCall{}
	}
	t := tracedCall{tracer: c.h.Tracer, start: time.Now()}
	if len(cmd) > 0 {
		t.op = cmd[0]
	}
	return t
}

func (t tracedCall) on() bool { return t.tracer != nil }

// end records the round trip of n commands.
func (t tracedCall) end(ctx context.Context, n int, err error) {
	op := t.op
	attrs := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(t.start),
		trace.WithAttributes(semconv.DBSystemNameRedis, semconv.DBOperationName(op)),
	}
	if n > 1 {
		attrs = append(attrs, trace.WithAttributes(semconv.DBOperationBatchSize(n)))
	}
	_, span := t.tracer.Start(ctx, "redis "+op, attrs...)
	if kind := errorKind(err); kind != "" {
		span.SetStatus(codes.Error, kind)
	}
	span.End()
}
