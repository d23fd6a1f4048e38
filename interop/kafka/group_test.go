package kafka_test

// Consumer groups with real clients (franz-go kgo, segmentio/kafka-go, librdkafka via kcat)
// against the gateway with the real broker and group coordinator in process. A "crash" of a
// member is simulated by cutting its TCP connections and refusing new ones, so it never sends
// LeaveGroup: the coordinator must notice through the session timeout.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	segkafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/group"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

const (
	grpSession    = 6 * time.Second // Kafka's group.min.session.timeout.ms
	grpPartitions = 6
)

// grpBackend is what cmd/gateway wires: the broker for topics, the coordinator for groups.
type grpBackend struct {
	*broker.Broker
	*group.Coordinator
	noSecurity
	brokerop.NoQuorum
}

// noSecurity serves no SCRAM credential or ACL ops.
type noSecurity struct{}

func (noSecurity) DescribeAcls(ctx context.Context, req *brokerop.DescribeAclsReq) (*brokerop.DescribeAclsResp, error) {
	return brokerop.Unimplemented{}.DescribeAcls(ctx, req)
}

func (noSecurity) CreateAcls(ctx context.Context, req *brokerop.CreateAclsReq) (*brokerop.CreateAclsResp, error) {
	return brokerop.Unimplemented{}.CreateAcls(ctx, req)
}

func (noSecurity) DeleteAcls(ctx context.Context, req *brokerop.DeleteAclsReq) (*brokerop.DeleteAclsResp, error) {
	return brokerop.Unimplemented{}.DeleteAcls(ctx, req)
}

func (noSecurity) DescribeUserScramCredentials(ctx context.Context, req *brokerop.DescribeUserScramCredentialsReq) (*brokerop.DescribeUserScramCredentialsResp, error) {
	return brokerop.Unimplemented{}.DescribeUserScramCredentials(ctx, req)
}

func (noSecurity) AlterUserScramCredentials(ctx context.Context, req *brokerop.AlterUserScramCredentialsReq) (*brokerop.AlterUserScramCredentialsResp, error) {
	return brokerop.Unimplemented{}.AlterUserScramCredentials(ctx, req)
}

var _ gateway.GroupBackend = grpBackend{}

// grpStart runs broker + coordinator + gateway on dir, listening on addr ("" = any port).
func grpStart(t testing.TB, dir, addr string) *rcStack {
	t.Helper()
	return startStack(t, dir, addr, true)
}

// grpSetup starts a leak-checked stack on a new directory and an admin client to it (both
// closed when the test ends); ctx ends after timeout or with the test.
func grpSetup(t *testing.T, timeout time.Duration) (ctx context.Context, s *rcStack, adm *kadm.Client) {
	t.Helper()
	grpLeakCheck(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	s = grpStart(t, t.TempDir(), "")
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return ctx, s, kadm.NewClient(cl)
}

// grpPoll polls cl into seen, committing after each poll when commit is set, until stop, which
// ends the loop (or parent does) and closes cl.
func grpPoll(parent context.Context, cl *kgo.Client, seen *grpSeen, commit bool) (stop func()) {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			if fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(r *kgo.Record) { seen.add(string(r.Value)) })
			if commit {
				cl.CommitUncommittedOffsets(ctx)
			}
		}
	})
	return func() { cancel(); wg.Wait(); cl.Close() }
}

func grpLeakCheck(t *testing.T) {
	// registered first, so it runs after every other cleanup
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
}

// grpCutter dials for one client and can cut it off the network.
type grpCutter struct {
	mu     sync.Mutex
	conns  []net.Conn
	dead   bool
	onKill func() // for clients in another process
}

func (c *grpCutter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return nil, errors.New("cut off")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err == nil {
		c.conns = append(c.conns, conn)
	}
	return conn, err
}

func (c *grpCutter) kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.onKill != nil {
		c.onKill()
	}
	c.dead = true
	for _, conn := range c.conns {
		conn.Close()
	}
}

// grpSeen counts consumptions per record value.
type grpSeen struct {
	mu sync.Mutex
	n  map[string]int
}

func (s *grpSeen) add(v string) {
	s.mu.Lock()
	s.n[v]++
	s.mu.Unlock()
}

// missing returns how many of the values 0..total-1 were never consumed.
func (s *grpSeen) missing(total int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := 0
	for i := range total {
		if s.n[strconv.Itoa(i)] == 0 {
			m++
		}
	}
	return m
}

// grpProduce writes values from..from+n-1 (as decimal strings), spread over partitions.
func grpProduce(t *testing.T, ctx context.Context, addr, topic string, from, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Value: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func grpCreateTopic(t *testing.T, ctx context.Context, adm *kadm.Client, topic string, parts int32) {
	t.Helper()
	r, err := adm.CreateTopics(ctx, parts, 1, nil, topic)
	if err != nil || r.Error() != nil {
		t.Fatalf("create %s: %v %v", topic, err, r.Error())
	}
}

// grpAssignment describes the group: members and sorted assigned partitions (nil unless
// Stable).
func grpAssignment(ctx context.Context, adm *kadm.Client, groupID string) (members int, parts []int32) {
	dg, err := adm.DescribeGroups(ctx, groupID)
	if err != nil {
		return 0, nil
	}
	d := dg[groupID]
	if d.State != "Stable" {
		return 0, nil
	}
	for _, m := range d.Members {
		ca, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		for _, tp := range ca.Topics {
			parts = append(parts, tp.Partitions...)
		}
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	return len(d.Members), parts
}

func allPartitions(parts []int32) bool {
	if len(parts) != grpPartitions {
		return false
	}
	for i, p := range parts {
		if p != int32(i) {
			return false
		}
	}
	return true
}

// grpFailover is the scenario every client runs: three members over six partitions consume
// 300 records; one member crashes; its partitions must be reassigned to the two survivors
// once its session times out, and 300 more records are consumed; every record is consumed at
// least once.
func grpFailover(t *testing.T, topic, groupID string, startMember func(addr string, i int, cut *grpCutter, seen *grpSeen) (stop func())) {
	ctx, s, adm := grpSetup(t, 90*time.Second)
	grpCreateTopic(t, ctx, adm, topic, grpPartitions)
	grpProduce(t, ctx, s.addr, topic, 0, 300)

	seen := &grpSeen{n: map[string]int{}}
	cuts := make([]*grpCutter, 3)
	stops := make([]func(), 3)
	for i := range 3 {
		cuts[i] = &grpCutter{}
		stops[i] = startMember(s.addr, i, cuts[i], seen)
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	kafkaclients.WaitFor(t, ctx, "three members sharing all partitions", func() bool {
		n, parts := grpAssignment(ctx, adm, groupID)
		return n == 3 && allPartitions(parts)
	})
	kafkaclients.WaitFor(t, ctx, "the first 300 records", func() bool { return seen.missing(300) == 0 })

	killed := time.Now()
	cuts[2].kill()
	grpProduce(t, ctx, s.addr, topic, 300, 300)
	kafkaclients.WaitFor(t, ctx, "the survivors to own every partition", func() bool {
		n, parts := grpAssignment(ctx, adm, groupID)
		return n == 2 && allPartitions(parts)
	})
	moved := time.Since(killed)
	t.Logf("partitions of the crashed member moved after %v (session timeout %v)", moved, grpSession)
	// The session clock starts at the member's last heartbeat (at most a heartbeat interval
	// before the cut, more on a loaded machine); a LeaveGroup would move them in well under a
	// second.
	if moved < grpSession/2 {
		t.Errorf("partitions moved after %v, long before the session timeout: was the member really cut off?", moved)
	}
	if moved > grpSession+10*time.Second {
		t.Errorf("partitions moved after %v, want soon after the %v session timeout", moved, grpSession)
	}
	kafkaclients.WaitFor(t, ctx, "all 600 records", func() bool { return seen.missing(600) == 0 })
}

func TestGroupKgoFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("takes ~15s (session timeout)")
	}
	grpFailover(t, "kgo-orders", "kgo-group", func(addr string, i int, cut *grpCutter, seen *grpSeen) func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.Dialer(cut.dial),
			kgo.ConsumerGroup("kgo-group"), kgo.ConsumeTopics("kgo-orders"), kgo.ClientID(fmt.Sprintf("kgo-%d", i)),
			kgo.SessionTimeout(grpSession), kgo.HeartbeatInterval(500*time.Millisecond),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
			kgo.RetryTimeout(3*time.Second), kgo.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		return grpPoll(context.Background(), cl, seen, true)
	})
}

func TestGroupKafkaGoFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("takes ~15s (session timeout)")
	}
	grpFailover(t, "kgo-events", "kafkago-group", func(addr string, i int, cut *grpCutter, seen *grpSeen) func() {
		r := segkafka.NewReader(segkafka.ReaderConfig{
			Brokers: []string{addr}, GroupID: "kafkago-group", Topic: "kgo-events",
			Dialer:            &segkafka.Dialer{ClientID: fmt.Sprintf("kafka-go-%d", i), DialFunc: cut.dial, Timeout: 2 * time.Second},
			SessionTimeout:    grpSession,
			HeartbeatInterval: 500 * time.Millisecond,
			RebalanceTimeout:  10 * time.Second,
			JoinGroupBackoff:  200 * time.Millisecond,
			StartOffset:       segkafka.FirstOffset,
			MaxWait:           200 * time.Millisecond,
			ReadBackoffMax:    200 * time.Millisecond,
		})
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			for ctx.Err() == nil {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					continue
				}
				seen.add(string(m.Value))
				r.CommitMessages(ctx, m)
			}
		})
		return func() { cancel(); wg.Wait(); r.Close() }
	})
}

func TestGroupKcatFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("takes ~15s (session timeout)")
	}
	kcat := kcatBin(t)
	grpFailover(t, "kcat-orders", "kcat-group", func(addr string, i int, cut *grpCutter, seen *grpSeen) func() {
		cmd := exec.Command(kcat, "-b", addr, "-G", "kcat-group", "kcat-orders", "-q", "-u", "-f", "%s\\n",
			"-X", "session.timeout.ms="+strconv.Itoa(int(grpSession.Milliseconds())),
			"-X", "heartbeat.interval.ms=500", "-X", "auto.offset.reset=earliest",
			"-X", "auto.commit.interval.ms=500", "-X", "fetch.wait.max.ms=200",
			"-X", "client.id=kcat-"+strconv.Itoa(i))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				seen.add(sc.Text())
			}
		})
		// kcat is its own process: a crash is SIGKILL (no LeaveGroup, connections reset).
		cut.onKill = func() { cmd.Process.Signal(syscall.SIGKILL) }
		return func() {
			cmd.Process.Signal(syscall.SIGKILL)
			wg.Wait()
			cmd.Wait()
		}
	})
}

// A consumer commits, the whole process (gateway, broker, coordinator) restarts, and the
// group's next consumer resumes exactly after the commit.
func TestGroupResumeAfterRestart(t *testing.T) {
	grpLeakCheck(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	s := grpStart(t, dir, "")
	addr := s.addr
	admCl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	grpCreateTopic(t, ctx, kadm.NewClient(admCl), "resume", 1)
	admCl.Close()
	grpProduce(t, ctx, addr, "resume", 0, 100)

	consume := func(n int, commitAt int64) (first int64) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("resumers"), kgo.ConsumeTopics("resume"),
			kgo.SessionTimeout(grpSession), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		first = -1
		var got int
		for got < n {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d", got, n)
			}
			for _, r := range fs.Records() {
				if first < 0 {
					first = r.Offset
				}
				got++
				if r.Offset == commitAt {
					if err := cl.CommitRecords(ctx, r); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		return first
	}
	if first := consume(100, 59); first != 0 {
		t.Fatalf("first consumer started at %d", first)
	}
	s.stop()
	s2 := grpStart(t, dir, addr)
	if s2.addr != addr {
		t.Fatalf("restarted on %s, want %s", s2.addr, addr)
	}
	if first := consume(40, -1); first != 60 {
		t.Fatalf("after restart the group resumed at offset %d, want 60 (committed 59)", first)
	}
}

// A static member (group.instance.id) that restarts within its session timeout gets its old
// partitions back without a rebalance: the other member is never asked to revoke anything.
func TestGroupKgoStaticRestart(t *testing.T) {
	ctx, s, adm := grpSetup(t, 60*time.Second)
	grpCreateTopic(t, ctx, adm, "static", grpPartitions)

	var mu sync.Mutex
	revokes := map[string]int{}
	member := func(inst string) (*kgo.Client, func()) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.addr), kgo.ConsumerGroup("statics"), kgo.ConsumeTopics("static"),
			kgo.InstanceID(inst), kgo.SessionTimeout(grpSession), kgo.HeartbeatInterval(300*time.Millisecond),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				if len(m["static"]) > 0 {
					mu.Lock()
					revokes[inst]++
					mu.Unlock()
				}
			}),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				mu.Lock()
				revokes[inst] += 100
				mu.Unlock()
			}))
		if err != nil {
			t.Fatal(err)
		}
		pctx, pcancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			for pctx.Err() == nil && !cl.PollFetches(pctx).IsClientClosed() {
			}
		})
		return cl, func() { pcancel(); wg.Wait(); cl.Close() }
	}
	assigned := func() map[string][]int32 {
		dg, err := adm.DescribeGroups(ctx, "statics")
		if err != nil || dg["statics"].State != "Stable" {
			return nil
		}
		out := map[string][]int32{}
		for _, m := range dg["statics"].Members {
			ca, _ := m.Assigned.AsConsumer()
			for _, tp := range ca.Topics {
				out[*m.InstanceID] = append(out[*m.InstanceID], tp.Partitions...)
			}
		}
		return out
	}
	_, stopA := member("ia")
	clB, stopB := member("ib")
	defer stopB()
	var before map[string][]int32
	kafkaclients.WaitFor(t, ctx, "both static members assigned", func() bool {
		before = assigned()
		return len(before["ia"]) > 0 && len(before["ib"]) > 0 && len(before["ia"])+len(before["ib"]) == grpPartitions
	})
	// let any follow-up cooperative rebalance settle, then reset the counters
	time.Sleep(time.Second)
	before = assigned()
	mu.Lock()
	clear(revokes)
	mu.Unlock()
	_, genBefore := clB.GroupMetadata()

	stopA() // a static kgo member does not send LeaveGroup on close
	_, stopA2 := member("ia")
	defer stopA2()
	kafkaclients.WaitFor(t, ctx, "the restarted member to be assigned", func() bool {
		after := assigned()
		return len(after["ia"]) > 0
	})
	time.Sleep(time.Second) // a rebalance, if one were triggered, would show up here
	after := assigned()
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("assignment changed across a static restart: before %v, after %v", before, after)
	}
	if _, genAfter := clB.GroupMetadata(); genAfter != genBefore {
		t.Fatalf("the other member moved from generation %d to %d: a rebalance happened", genBefore, genAfter)
	}
	mu.Lock()
	defer mu.Unlock()
	if revokes["ib"] != 0 {
		t.Fatalf("the other member had partitions revoked/lost %d times: a rebalance happened", revokes["ib"])
	}
}

// Ten kgo members join at once (cooperative-sticky, kgo's default) and five of them leave at
// once: each time the group settles with every partition owned by exactly one member.
func TestGroupKgoJoinStorm(t *testing.T) {
	ctx, s, adm := grpSetup(t, 60*time.Second)
	grpCreateTopic(t, ctx, adm, "storm", grpPartitions)
	grpProduce(t, ctx, s.addr, "storm", 0, 60)

	seen := &grpSeen{n: map[string]int{}}
	type mem struct {
		cl   *kgo.Client
		stop func()
	}
	var mems []mem
	for i := range 10 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.addr), kgo.ConsumerGroup("storm"), kgo.ConsumeTopics("storm"),
			kgo.ClientID(fmt.Sprintf("storm-%d", i)), kgo.SessionTimeout(grpSession), kgo.HeartbeatInterval(300*time.Millisecond),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		mems = append(mems, mem{cl, grpPoll(ctx, cl, seen, false)})
	}
	defer func() {
		for _, m := range mems {
			m.stop()
		}
	}()
	settled := func(members int) func() bool {
		return func() bool {
			n, parts := grpAssignment(ctx, adm, "storm")
			return n == members && allPartitions(parts) // sorted and each exactly once
		}
	}
	kafkaclients.WaitFor(t, ctx, "ten members to settle", settled(10))
	kafkaclients.WaitFor(t, ctx, "the first 60 records", func() bool { return seen.missing(60) == 0 })

	var wg sync.WaitGroup
	for _, m := range mems[5:] {
		wg.Go(m.stop) // kgo's Close leaves the group
	}
	wg.Wait()
	mems = mems[:5]
	kafkaclients.WaitFor(t, ctx, "five members to settle", settled(5))
	grpProduce(t, ctx, s.addr, "storm", 60, 60)
	kafkaclients.WaitFor(t, ctx, "all 120 records", func() bool { return seen.missing(120) == 0 })
}
