package redisrepo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/profile"
)

// Event stream entry fields (docs/events.md). The entry id is the event id.
const (
	evType     = "type"
	evReason   = "reason"
	evUser     = "user_id"
	evSession  = "session_id"
	evTime     = "time"
	evInstance = "instance"
	evDuration = "duration_ms"
	evSection  = "section"
)

// Defaults of EventOptions.
const (
	DefaultEventsMaxLen = 100_000
	DefaultEventsGroup  = "pc-webhook"
)

// EventOptions configure an EventStream. Zero values take the defaults.
type EventOptions struct {
	// Prefix starts the key: <prefix>:events. Default DefaultPrefix.
	Prefix string
	// MaxLen caps the stream (EVENTS_MAX_LEN): XADD trims it to about this
	// many entries ("MAXLEN ~", whole macro nodes, so cheaply).
	MaxLen int64
	// Instance names this process in every event it records and as the
	// consumer that delivers events (INSTANCE_ID).
	Instance string
	// Group is the consumer group that delivers events to the webhook.
	Group string
	Now   func() time.Time
	// Logger receives a warning for each event that could not be recorded.
	Logger *slog.Logger
	// OnLost, when set, counts events that could not be recorded.
	OnLost func()
}

// EventStream records events in one capped Redis Stream and hands them to
// the webhook deliverer through a consumer group. The stream is one key
// outside every user's hash tag, so on a cluster it lives in its own slot:
// events are added after the user's keys changed, never in the same script.
type EventStream struct {
	client   rueidis.Client
	key      string
	maxLen   string
	instance string
	group    string
	now      func() time.Time
	log      *slog.Logger
	onLost   func()
}

// NewEventStream returns the stream on client.
func NewEventStream(client rueidis.Client, opts EventOptions) *EventStream {
	s := &EventStream{
		client:   client,
		key:      newKeyspace(opts.Prefix).prefix + ":events",
		maxLen:   strconv.FormatInt(positiveOr64(opts.MaxLen, DefaultEventsMaxLen), 10),
		instance: opts.Instance,
		group:    opts.Group,
		now:      opts.Now,
		log:      opts.Logger,
		onLost:   opts.OnLost,
	}
	if s.group == "" {
		s.group = DefaultEventsGroup
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// Key is the stream's key.
func (s *EventStream) Key() string { return s.key }

// Emit appends events, in order: one XADD each, sent together. It never
// fails the caller: the session or profile change it reports has already
// happened. A lost event is logged and counted. It runs to its end even
// when the request that caused it ends first (REDIS_TIMEOUT still bounds
// it), so that a client hanging up right after its logout does not lose
// the logout's event.
func (s *EventStream) Emit(ctx context.Context, events ...profile.Event) {
	if len(events) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	now := s.now().UTC().Format(profile.EventTimeFormat)
	cmds := make(rueidis.Commands, len(events))
	for i, e := range events {
		cmds[i] = s.xadd(e, now)
	}
	for i, r := range s.client.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			e := events[i]
			if s.onLost != nil {
				s.onLost()
			}
			s.log.LogAttrs(ctx, slog.LevelWarn, "event not recorded", slog.String("type", e.Type),
				slog.String("reason", e.Reason), slog.String("user", e.UserID.String()),
				slog.String("session", e.SessionID), slog.Any("error", err))
		}
	}
}

// xadd is the command that records e at time now.
func (s *EventStream) xadd(e profile.Event, now string) rueidis.Completed {
	cmd := s.client.B().Xadd().Key(s.key).Maxlen().Almost().Threshold(s.maxLen).Id("*").FieldValue().
		FieldValue(evType, e.Type).FieldValue(evReason, e.Reason).FieldValue(evUser, e.UserID.String())
	if e.SessionID != "" {
		cmd = cmd.FieldValue(evSession, e.SessionID)
	}
	cmd = cmd.FieldValue(evTime, now).FieldValue(evInstance, s.instance)
	if e.Type == profile.EventProfileReloaded {
		cmd = cmd.FieldValue(evDuration, strconv.FormatInt(e.Duration.Milliseconds(), 10))
	}
	if e.Section != "" {
		cmd = cmd.FieldValue(evSection, e.Section)
	}
	return cmd.Build()
}

// decodeEvent turns a stream entry back into an event.
func decodeEvent(x rueidis.XRangeEntry) (profile.Event, error) {
	f := x.FieldValues
	e := profile.Event{ID: x.ID, Type: f[evType], Reason: f[evReason], SessionID: f[evSession], Instance: f[evInstance],
		Section: f[evSection]}
	var errs []error
	var err error
	if e.UserID, err = uuid.Parse(f[evUser]); err != nil {
		errs = append(errs, fmt.Errorf("user_id: %w", err))
	}
	if e.Time, err = time.Parse(profile.EventTimeFormat, f[evTime]); err != nil {
		errs = append(errs, fmt.Errorf("time: %w", err))
	}
	if d, ok := f[evDuration]; ok {
		ms, err := strconv.ParseInt(d, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("duration_ms: %w", err))
		}
		e.Duration = time.Duration(ms) * time.Millisecond
	}
	if e.Type == "" {
		errs = append(errs, errors.New("no type"))
	}
	if err := errors.Join(errs...); err != nil {
		return e, fmt.Errorf("event %s: %w", x.ID, err)
	}
	return e, nil
}

// Range returns up to count events from start on (a stream id, "-" for the
// oldest), oldest first.
func (s *EventStream) Range(ctx context.Context, start string, count int64) ([]profile.Event, error) {
	xs, err := s.client.Do(ctx, s.client.B().Xrange().Key(s.key).Start(start).End("+").Count(count).Build()).AsXRange()
	if err != nil {
		return nil, fmt.Errorf("redisrepo: read events: %w", err)
	}
	return decodeEvents(xs)
}

// decodeEvents decodes every entry; one that does not decode is returned
// with what could be read and an error naming it, so that a deliverer can
// drop it instead of retrying it forever.
func decodeEvents(xs []rueidis.XRangeEntry) ([]profile.Event, error) {
	out := make([]profile.Event, 0, len(xs))
	var errs []error
	for _, x := range xs {
		e, err := decodeEvent(x)
		if err != nil {
			errs = append(errs, err)
			e.Type = "" // marks it undeliverable
		}
		out = append(out, e)
	}
	return out, errors.Join(errs...)
}

// EnsureGroup creates the delivery group unless it exists, with the stream
// if need be. A new group starts at the stream's end: switching a webhook
// on does not replay the stream's history.
func (s *EventStream) EnsureGroup(ctx context.Context) error {
	err := s.client.Do(ctx, s.client.B().XgroupCreate().Key(s.key).Group(s.group).Id("$").Mkstream().Build()).Error()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("redisrepo: create event group: %w", err)
	}
	return nil
}

// regroup answers NOGROUP, a stream deleted with its group (FLUSHALL, a
// failover to a replica that had not seen it), by creating them again:
// nil then, else err.
func (s *EventStream) regroup(ctx context.Context, err error) error {
	if re, ok := rueidis.IsRedisErr(err); !ok || !strings.HasPrefix(re.Error(), "NOGROUP") {
		return err
	}
	return s.EnsureGroup(ctx)
}

// Read hands this instance up to count events that no consumer of the
// group has been given yet, waiting up to block for one. Each stays
// pending until Ack.
//
// XREADGROUP BLOCK runs on a connection of its own (rueidis sends blocking
// commands on its dedicated pool), so it never stalls the pipeline that
// requests share; block must stay below REDIS_TIMEOUT, which bounds it.
func (s *EventStream) Read(ctx context.Context, count int64, block time.Duration) ([]profile.Event, error) {
	cmd := s.client.B().Xreadgroup().Group(s.group, s.instance).Count(count).Block(block.Milliseconds()).
		Streams().Key(s.key).Id(">").Build()
	res, err := s.client.Do(ctx, cmd).AsXRead()
	if rueidis.IsRedisNil(err) {
		return nil, nil // nothing new within block
	}
	if err != nil {
		if err = s.regroup(ctx, err); err == nil {
			return nil, nil
		}
		return nil, fmt.Errorf("redisrepo: read new events: %w", err)
	}
	return decodeEvents(res[s.key])
}

// Claim takes over up to count events that another consumer was given and
// has not acknowledged or extended for minIdle: that consumer is presumed
// dead. XAUTOCLAIM also drops pending ids whose entries the cap trimmed.
func (s *EventStream) Claim(ctx context.Context, minIdle time.Duration, count int64) ([]profile.Event, error) {
	cmd := s.client.B().Xautoclaim().Key(s.key).Group(s.group).Consumer(s.instance).
		MinIdleTime(strconv.FormatInt(minIdle.Milliseconds(), 10)).Start("0-0").Count(count).Build()
	reply, err := s.client.Do(ctx, cmd).ToArray()
	if err == nil && len(reply) < 2 {
		err = fmt.Errorf("%d elements in the reply", len(reply))
	}
	if err != nil {
		if err = s.regroup(ctx, err); err == nil {
			return nil, nil
		}
		return nil, fmt.Errorf("redisrepo: claim events: %w", err)
	}
	xs, err := reply[1].AsXRange()
	if err != nil {
		return nil, fmt.Errorf("redisrepo: claim events: %w", err)
	}
	return decodeEvents(xs)
}

// Extend tells the group that this instance still works on ids: it resets
// their idle time, so that no other instance claims them meanwhile.
func (s *EventStream) Extend(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	cmd := s.client.B().Xclaim().Key(s.key).Group(s.group).Consumer(s.instance).MinIdleTime("0").
		Id(ids...).Justid().Build()
	if err := s.client.Do(ctx, cmd).Error(); err != nil {
		return fmt.Errorf("redisrepo: extend events: %w", err)
	}
	return nil
}

// Ack marks ids delivered (or given up): no consumer gets them again.
func (s *EventStream) Ack(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := s.client.Do(ctx, s.client.B().Xack().Key(s.key).Group(s.group).Id(ids...).Build()).Error(); err != nil {
		return fmt.Errorf("redisrepo: ack events: %w", err)
	}
	return nil
}

func positiveOr64(n, def int64) int64 {
	if n > 0 {
		return n
	}
	return def
}
