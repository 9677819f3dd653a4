package redisrepo

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"
)

// DefaultWaitTimeout is TokenOptions.WaitTimeout's default, REDIS_TIMEOUT's.
const DefaultWaitTimeout = 2 * time.Second

// Replication in Redis is asynchronous: a master acknowledges a write
// before its replicas have it, and a master that dies a moment later takes
// the write with it when its replica is promoted. For a cached profile
// that costs one reload from the CRM; for a session just created it costs
// the user that login (the next request answers 401 and they sign in
// again; never someone else's data). WAIT closes that gap for logins:
// once it has counted a replica's acknowledgement, the promoted replica
// holds the session.
//
// WAIT counts the writes of the connection it is sent on, so it has to
// follow the script on the same connection. rueidis routes a keyless
// command to any node and sends blocking commands (WAIT is one) on a pooled
// connection of their own, so the script, ROLE and WAIT go through a
// dedicated connection to the user's master.
//
// ROLE, pipelined with the script, says how many replicas the master has
// online: WAIT for more replicas than are connected would block for its
// whole timeout on every login, e.g. on the master a failover just
// promoted, until its old master is back as its replica. A master without
// replicas cannot fail over to one either, so there is nothing to wait for.

// createScriptSHA is what EVALSHA calls createScript by.
var createScriptSHA = func() string {
	sum := sha1.Sum([]byte(createScriptSrc))
	return hex.EncodeToString(sum[:])
}()

// createReplicated runs createScript, then waits until WaitReplicas
// replicas (at most as many as are online) confirm it, all within
// WaitTimeout. It returns the sessions the script ended even when only
// the wait failed: they are gone either way.
//
// Fewer confirmations than asked for, within the timeout, are not an
// error: the master has the session, and refusing logins whenever a
// replica lags or is down would trade a rare lost session for an outage.
// They are logged. A failed WAIT (the connection broke) is an error: the
// master may have died with the session, and the user had better sign in
// again now than find out later.
func (t *TokenStore) createReplicated(ctx context.Context, userID uuid.UUID, keys, args []string) (ended createReply, err error) {
	ctx, cancel := context.WithTimeout(ctx, t.waitTimeout)
	defer cancel()
	err = t.client.Dedicated(func(d rueidis.DedicatedClient) error {
		b := d.B()
		rs := d.DoMulti(ctx, b.Evalsha().Sha1(createScriptSHA).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build(), b.Role().Build())
		if re, ok := rueidis.IsRedisErr(rs[0].Error()); ok && re.IsNoScript() {
			// A master that never ran it, e.g. a replica just promoted.
			rs = d.DoMulti(ctx, b.Eval().Script(createScriptSrc).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build(), b.Role().Build())
		}
		var err error
		if ended, err = parseCreateReply(rs[0]); err != nil {
			return err
		}
		want := t.waitReplicas
		if online, ok := onlineReplicas(rs[1]); ok {
			want = min(want, online)
		}
		if want == 0 {
			return nil
		}
		timeout := max(t.waitTimeout/2, time.Millisecond) // WAIT 0 would wait forever
		got, err := d.Do(ctx, b.Wait().Numreplicas(int64(want)).Timeout(timeout.Milliseconds()).Build()).AsInt64()
		if err != nil {
			return fmt.Errorf("wait for %d replica(s): %w", want, err)
		}
		if int(got) < want {
			t.log.WarnContext(ctx, "login not confirmed by the replicas: it is lost if the master fails before they catch up",
				"user", userID, "replicas_wanted", want, "replicas_confirmed", got, "timeout", timeout)
		}
		return nil
	})
	return ended, err
}

// onlineReplicas reads ROLE's answer on a master: the replicas connected
// to it. ok is false when it cannot tell (ROLE refused, e.g. by an ACL).
func onlineReplicas(r rueidis.RedisResult) (n int, ok bool) {
	arr, err := r.ToArray()
	if err != nil || len(arr) < 3 {
		return 0, false
	}
	if role, err := arr[0].ToString(); err != nil || role != "master" {
		return 0, false
	}
	replicas, err := arr[2].ToArray()
	if err != nil {
		return 0, false
	}
	return len(replicas), true
}
