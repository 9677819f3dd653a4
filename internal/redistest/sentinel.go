package redistest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/profilecache/profilecache/internal/redisproc"
)

// MasterSet is the name the test sentinels monitor their master under.
const MasterSet = "mymaster"

// sentinelCount and sentinelQuorum: three sentinels, two of which must
// agree that the master is down, the smallest setup that survives losing
// one sentinel.
const (
	sentinelCount  = 3
	sentinelQuorum = 2
)

// DownAfter is the sentinels' down-after-milliseconds: how long a node may
// not answer before it is taken to be down. Short, for quick tests, and
// not shorter: at 1 s, on a loaded machine, the sentinels once took the
// just-promoted master for dead and failed over again, to the restarted
// and still empty old one (docs/scale.md#redis-sentinel).
const DownAfter = 3 * time.Second

// sentinelWait bounds the waits for what Sentinel does on its own time:
// noticing a dead master, electing a leader, promoting the replica, and
// turning a restarted old master into a replica (which it only does after
// about 8 s of seeing it, plus up to 10 s between INFO polls). A liveness
// bound for a loaded machine, not a latency target.
const sentinelWait = 90 * time.Second

// SentinelOptions adjust StartSentinelWith.
type SentinelOptions struct {
	// Password, if set, is what the sentinels require of clients (and of
	// each other): requirepass, as REDIS_SENTINEL_PASSWORD supplies it.
	// The data nodes stay without one.
	Password string
}

// Sentinel is a Redis Sentinel setup on loopback: a master, one replica
// and three sentinels (redis-server --sentinel, the binary Debian's
// redis-sentinel package links to) monitoring them as MasterSet, with
// down-after-milliseconds DownAfter, so that a killed master fails over
// within seconds.
type Sentinel struct {
	// Nodes are the data servers: Nodes[0] started as the master, Nodes[1]
	// as its replica. Which is master now: Master.
	Nodes []*Server
	// Sentinels are the sentinel processes.
	Sentinels []*Server

	password string
}

var _ Target = (*Sentinel)(nil)

// StartSentinel starts a Sentinel setup of its own for tb, waits until
// every sentinel sees the master, the replica and the other sentinels, and
// stops it all when tb ends. It takes a few seconds: sentinels find each
// other through hello messages sent every 2 s.
func StartSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	return StartSentinelWith(tb, SentinelOptions{})
}

// StartSentinelWith is StartSentinel with options.
func StartSentinelWith(tb testing.TB, opts SentinelOptions) *Sentinel {
	tb.Helper()
	s := &Sentinel{password: opts.Password}
	dir := tb.TempDir() // first: removed after the logs are dumped
	tb.Cleanup(func() {
		if tb.Failed() {
			s.dumpLogs(tb, 16<<10)
		}
		s.stop()
	})
	if err := s.start(tb, dir); err != nil {
		tb.Fatalf("redistest: sentinel: %v", err)
	}
	return s
}

func (s *Sentinel) start(tb testing.TB, dir string) error {
	tb.Helper()
	bin := lookPath(tb, "redis-server")
	// A replica (and a restarted old master, once Sentinel makes it one)
	// syncs at once instead of waiting 5 s for more replicas.
	dataArgs := func(int) ([]string, error) { return []string{"--repl-diskless-sync-delay", "0"}, nil }
	for i := range 2 {
		d := filepath.Join(dir, "node"+strconv.Itoa(i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		n, err := launch(tb, d, dataArgs)
		if err != nil {
			return fmt.Errorf("start data node %d: %w", i, err)
		}
		s.Nodes = append(s.Nodes, n)
	}
	master := s.Nodes[0]
	s.Nodes[1].ReplicaOf(tb, master)

	if err := s.startSentinels(tb, dir, bin, master.Addr); err != nil {
		return err
	}
	return s.awaitSentinels(master.Addr)
}

// startSentinels starts sentinelCount sentinels that monitor master.
func (s *Sentinel) startSentinels(tb testing.TB, dir, bin, master string) error {
	host, port, err := net.SplitHostPort(master)
	if err != nil {
		return err
	}
	// Sentinel rewrites its config file (its id, the other sentinels, the
	// current master), so each gets a writable one of its own.
	conf := strings.Join([]string{
		fmt.Sprintf("sentinel monitor %s %s %s %d", MasterSet, host, port, sentinelQuorum),
		fmt.Sprintf("sentinel down-after-milliseconds %s %d", MasterSet, DownAfter.Milliseconds()),
		// Also how long before a failed failover is tried again (twice
		// this): short, so that a split vote on a loaded machine costs
		// seconds, not minutes.
		fmt.Sprintf("sentinel failover-timeout %s 5000", MasterSet),
	}, "\n") + "\n"
	if s.password != "" {
		// Sentinels authenticate to each other with sentinel-pass.
		conf += fmt.Sprintf("requirepass %q\nsentinel sentinel-pass %q\n", s.password, s.password)
	}
	for i := range sentinelCount {
		d := filepath.Join(dir, "sentinel"+strconv.Itoa(i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		path := filepath.Join(d, "sentinel.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return err
		}
		p, err := redisproc.Start(redisproc.Options{Bin: bin, Dir: d, Conf: path,
			Extra: func(int) ([]string, error) { return []string{"--sentinel"}, nil }})
		if p != nil {
			s.Sentinels = append(s.Sentinels, &Server{Addr: p.Addr, tb: tb, proc: p})
		}
		if err != nil {
			return fmt.Errorf("start sentinel %d: %w", i, err)
		}
	}
	return nil
}

// awaitSentinels waits until every sentinel sees the master, its replica
// and the other sentinels.
func (s *Sentinel) awaitSentinels(master string) error {
	want := fmt.Sprintf("status=ok,address=%s,slaves=1,sentinels=%d", master, sentinelCount)
	deadline := time.Now().Add(sentinelWait)
	for {
		ready, last := true, ""
		for _, sn := range s.Sentinels {
			info, err := s.sentinelInfo(sn)
			if err != nil || !strings.Contains(info, want) {
				ready, last = false, fmt.Sprintf("%s: %v %s", sn.Addr, err, strings.ReplaceAll(info, "\r\n", " "))
				break
			}
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sentinels not ready within %v (want %q); last: %s", sentinelWait, want, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Sentinel) stop() {
	for _, n := range append(append([]*Server{}, s.Sentinels...), s.Nodes...) {
		n.stop()
	}
}

func (s *Sentinel) dumpLogs(tb testing.TB, max int) {
	for _, n := range append(append([]*Server{}, s.Nodes...), s.Sentinels...) {
		n.dumpLogTail(tb, max)
	}
}

// sentinelInfo returns INFO sentinel of sn, authenticating if need be.
func (s *Sentinel) sentinelInfo(sn *Server) (string, error) {
	if s.password == "" {
		return command(sn.Addr, "INFO", "sentinel")
	}
	out, err := redisproc.Pipeline(sn.Addr, []string{"AUTH", s.password}, []string{"INFO", "sentinel"})
	if err != nil {
		return "", err
	}
	return out[1], nil
}

// Name implements Target.
func (s *Sentinel) Name() string { return "sentinel" }

// Mode implements Target.
func (s *Sentinel) Mode() rueidis.ClientMode { return rueidis.ClientModeSentinel }

// URL is the REDIS_URL of the setup as rueidis.ParseURL reads it: the
// sentinels as addresses and the master set's name,
// redis://s1?addr=s2&addr=s3&master_set=mymaster.
func (s *Sentinel) URL() string {
	u := "redis://" + s.Sentinels[0].Addr + "?"
	for _, sn := range s.Sentinels[1:] {
		u += "addr=" + sn.Addr + "&"
	}
	return u + "master_set=" + MasterSet
}

// Client returns a new client of the master through the sentinels, closed
// when tb ends; it fails tb unless rueidis runs in sentinel mode.
func (s *Sentinel) Client(tb testing.TB, opts ...func(*rueidis.ClientOption)) rueidis.Client {
	tb.Helper()
	opt, err := rueidis.ParseURL(s.URL())
	if err != nil {
		tb.Fatalf("redistest: parse %s: %v", s.URL(), err)
	}
	opt.Sentinel.Password = s.password
	for _, f := range opts {
		f(&opt)
	}
	c, err := rueidis.NewClient(opt)
	if err != nil {
		tb.Fatalf("redistest: connect through sentinels %v: %v", opt.InitAddress, err)
	}
	tb.Cleanup(c.Close)
	if got := c.Mode(); got != rueidis.ClientModeSentinel {
		tb.Fatalf("redistest: client mode = %s, want %s", got, rueidis.ClientModeSentinel)
	}
	return c
}

// Master returns the data node that a quorum of the sentinels names as
// master now, or nil while they disagree or none answers.
func (s *Sentinel) Master(tb testing.TB) *Server {
	tb.Helper()
	votes := map[string]int{}
	for _, sn := range s.Sentinels {
		info, err := s.sentinelInfo(sn)
		if err != nil {
			continue
		}
		if addr := field(infoLine(info, "master0"), "address"); addr != "" {
			votes[addr]++
		}
	}
	for addr, n := range votes {
		if n >= sentinelQuorum {
			return s.node(tb, addr)
		}
	}
	return nil
}

func (s *Sentinel) node(tb testing.TB, addr string) *Server {
	tb.Helper()
	for _, n := range s.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	tb.Fatalf("redistest: the sentinels name %s, which is none of the data nodes", addr)
	return nil
}

// WaitFailover waits until a quorum of the sentinels names a master other
// than old and that node says it is one, and returns it.
func (s *Sentinel) WaitFailover(tb testing.TB, old *Server) *Server {
	tb.Helper()
	deadline := time.Now().Add(sentinelWait)
	for {
		if m := s.Master(tb); m != nil && m != old {
			if info, err := command(m.Addr, "INFO", "replication"); err == nil && hasLine(info, "role:master") {
				return m
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: no failover away from %s within %v", old.Addr, sentinelWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitReplicaOf waits until n is a replica of master with its link up and
// synced, as Sentinel makes a restarted old master.
func (s *Sentinel) WaitReplicaOf(tb testing.TB, n, master *Server) {
	tb.Helper()
	_, port, err := net.SplitHostPort(master.Addr)
	if err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(sentinelWait)
	for {
		info, err := command(n.Addr, "INFO", "replication")
		if err == nil && hasLine(info, "role:slave") && hasLine(info, "master_port:"+port) &&
			hasLine(info, "master_link_status:up") && hasLine(info, "master_sync_in_progress:0") {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: %s not a synced replica of %s within %v: %v %s", n.Addr, master.Addr, sentinelWait, err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitReplicated waits until every replica of master has acknowledged all
// that master has written so far: what a failover then promotes holds
// every write made before the call. (Replication is asynchronous: a write
// acknowledged by the master and not yet replicated is lost when the
// replica is promoted.)
func (s *Sentinel) WaitReplicated(tb testing.TB, master *Server) {
	tb.Helper()
	want, err := strconv.ParseInt(infoLine(master.Command(tb, "INFO", "replication"), "master_repl_offset"), 10, 64)
	if err != nil {
		tb.Fatalf("redistest: master_repl_offset of %s: %v", master.Addr, err)
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		info := master.Command(tb, "INFO", "replication")
		n, _ := strconv.Atoi(infoLine(info, "connected_slaves"))
		acked := 0
		for i := range n {
			// slave0:ip=127.0.0.1,port=6380,state=online,offset=123,lag=0
			r := infoLine(info, "slave"+strconv.Itoa(i))
			off, _ := strconv.ParseInt(field(r, "offset"), 10, 64)
			if field(r, "state") == "online" && off >= want {
				acked++
			}
		}
		if n > 0 && acked == n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: replicas of %s did not reach offset %d within %v:\n%s", master.Addr, want, readyTimeout, info)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// infoLine returns the value of a key:value line of an INFO reply.
func infoLine(info, key string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+":"); ok {
			return v
		}
	}
	return ""
}

// field returns the value of key in a comma-separated key=value list, as
// INFO gives a sentinel's master or a master's replica:
// name=mymaster,status=ok,address=127.0.0.1:6379,slaves=1,sentinels=3.
func field(list, key string) string {
	for kv := range strings.SplitSeq(list, ",") {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}
