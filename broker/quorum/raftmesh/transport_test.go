package raftmesh

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/meshkafka/meshkafka/broker/internal/meshlink/meshlinktest"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/internal/meshtest/magicep"
	"github.com/meshkafka/meshkafka/internal/meshtest/natlab"
	"github.com/meshkafka/meshkafka/mesh/disco"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/magicsock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// quorumTransport is broker/quorum's Transport interface, copied: raftmesh must satisfy it
// without importing quorum.
type quorumTransport interface {
	Send(msgs []*raftpb.Message)
	AddPeer(id uint64, peer []byte)
	RemovePeer(id uint64)
}

var _ quorumTransport = (*Transport)(nil)

// lab is a magicep.Lab: a natlab internet with an in-memory relay, everything (UDP, relay,
// QUIC timers, backoff) inside a synctest bubble, in virtual time, touching no socket.
type lab struct{ *magicep.Lab }

func newLab(t *testing.T, viaRelay bool) *lab { return &lab{magicep.NewLab(t, viaRelay)} }

// node is one raft peer: a machine on the lab internet, a magicsock and endpoint on it, and a
// transport recording what it delivers.
type node struct {
	t   *testing.T
	l   *lab
	id  uint64
	sk  key.SecretKey
	m   *natlab.Machine
	ms  *magicsock.Conn
	ep  *endpoint.Endpoint
	tr  *Transport
	log *logRec

	mu          sync.Mutex
	got         []*raftpb.Message // guarded by mu
	unreachable map[uint64]int    // guarded by mu
	snaps       []error           // guarded by mu
	trusted     meshlinktest.Keys
}

// start runs a node with raft id id on m (a fresh machine if nil) with key sk (fresh if
// zero); cfg's Trust, Deliver, Log and callbacks are filled in.
func (l *lab) start(t *testing.T, id uint64, m *natlab.Machine, sk key.SecretKey, cfg Config) *node {
	t.Helper()
	if m == nil {
		m = l.Machine()
	}
	if sk.IsZero() {
		sk = key.GenerateSecretKey()
	}
	n := &node{t: t, l: l, id: id, sk: sk, m: m, log: &logRec{}, unreachable: map[uint64]int{}}
	n.ms, n.ep = l.Endpoint(t, m, sk)
	cfg.Trust = n.trusted.Trusts
	cfg.Deliver = n.deliver
	cfg.Log = slog.New(n.log)
	cfg.Unreachable = func(id uint64) { n.mu.Lock(); n.unreachable[id]++; n.mu.Unlock() }
	cfg.SnapshotStatus = func(_ uint64, err error) { n.mu.Lock(); n.snaps = append(n.snaps, err); n.mu.Unlock() }
	n.tr = NewWithConfig(n.ep, cfg)
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	_ = n.tr.Close()
	_ = n.ep.Close()
}

func (n *node) deliver(m *raftpb.Message) {
	n.mu.Lock()
	n.got = append(n.got, m)
	n.mu.Unlock()
}

// received returns what n delivered from raft id from.
func (n *node) received(from uint64) []*raftpb.Message {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []*raftpb.Message
	for _, m := range n.got {
		if m.GetFrom() == from {
			out = append(out, m)
		}
	}
	return out
}

func (n *node) unreachableCount(id uint64) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.unreachable[id]
}

func (n *node) addr() []byte { return EncodeAddr(n.ep.Addr()) }

// newPair starts nodes 1 (with cfgA) and 2 (with cfgB) on fresh machines of a lab without
// a relay and introduces them to each other.
func newPair(t *testing.T, cfgA, cfgB Config) (l *lab, a, b *node) {
	t.Helper()
	l = newLab(t, false)
	a, b = l.start(t, 1, nil, key.SecretKey{}, cfgA), l.start(t, 2, nil, key.SecretKey{}, cfgB)
	meet(a, b)
	return l, a, b
}

// meet makes every node trust and know every other.
func meet(nodes ...*node) {
	meshlinktest.Meet(nodes, func(a, b *node) {
		a.trusted.Set(b.sk.Public(), true)
		a.tr.AddPeer(b.id, b.addr())
	})
}

// msg is a MsgApp from→to with index idx and an entry of size bytes.
func msg(from, to, idx uint64, size int) *raftpb.Message {
	data := bytes.Repeat([]byte{byte(idx)}, size)
	return &raftpb.Message{
		Type: raftpb.MsgApp.Enum(), From: proto.Uint64(from), To: proto.Uint64(to), Term: proto.Uint64(1),
		Index: proto.Uint64(idx), LogTerm: proto.Uint64(1), Commit: proto.Uint64(idx),
		Entries: []*raftpb.Entry{{Term: proto.Uint64(1), Index: proto.Uint64(idx + 1), Type: raftpb.EntryNormal.Enum(), Data: data}},
	}
}

// waitFor polls cond every 10 ms of bubble time, failing after limit of bubble time.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(limit); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("after %v (bubble time): %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sendUntil sends a copy of m from n every 100 ms of bubble time until cond holds (at most
// 30 s).
func sendUntil(t *testing.T, n *node, m *raftpb.Message, what string, cond func() bool) {
	t.Helper()
	for range 300 {
		if cond() {
			return
		}
		n.tr.Send([]*raftpb.Message{proto.Clone(m).(*raftpb.Message)})
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("after 30 s (bubble time): %s", what)
}

// checkInOrder asserts got is exactly want, message by message.
func checkInOrder(t *testing.T, what string, got, want []*raftpb.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d messages, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("%s: message %d is index %d, want index %d (or differs)", what, i, got[i].GetIndex(), want[i].GetIndex())
		}
	}
}

// exchange has every node send batches to every other and checks each receiver got every
// sender's messages exactly, in order.
func exchange(t *testing.T, nodes []*node, batches, perBatch, size int) {
	t.Helper()
	want := map[[2]uint64][]*raftpb.Message{}
	for b := range batches {
		for _, from := range nodes {
			var out []*raftpb.Message
			for _, to := range nodes {
				if to == from {
					continue
				}
				for i := range perBatch {
					m := msg(from.id, to.id, uint64(b*perBatch+i+1), size)
					want[[2]uint64{from.id, to.id}] = append(want[[2]uint64{from.id, to.id}], proto.Clone(m).(*raftpb.Message))
					out = append(out, m)
				}
			}
			from.tr.Send(out)
		}
		time.Sleep(time.Millisecond)
	}
	for _, to := range nodes {
		for _, from := range nodes {
			if to == from {
				continue
			}
			w := want[[2]uint64{from.id, to.id}]
			waitFor(t, 30*time.Second, fmt.Sprintf("%d→%d delivered", from.id, to.id), func() bool { return len(to.received(from.id)) >= len(w) })
			checkInOrder(t, fmt.Sprintf("%d→%d", from.id, to.id), to.received(from.id), w)
		}
	}
}

// TestExchange: two and three nodes exchange batches of messages, each receiver getting each
// sender's messages in order; then the same with the nodes reaching each other only through
// the relay (every UDP packet between them dropped).
func TestExchange(t *testing.T) {
	for _, tc := range []struct {
		nodes    int
		viaRelay bool
	}{{2, false}, {3, false}, {2, true}, {3, true}} {
		t.Run(fmt.Sprintf("%d nodes relay=%v", tc.nodes, tc.viaRelay), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newLab(t, tc.viaRelay)
				if tc.viaRelay {
					l.Net.SetDrop(func(natlab.Packet) bool { return true })
				}
				var nodes []*node
				for i := range tc.nodes {
					nodes = append(nodes, l.start(t, uint64(i+1)*1000003, nil, key.SecretKey{}, Config{}))
				}
				meet(nodes...)
				exchange(t, nodes, 10, 50, 200)
				for _, n := range nodes {
					st := n.tr.Stats()
					if st.Delivered != uint64(10*50*(tc.nodes-1)) || st.Dropped != 0 || st.Refused != 0 {
						t.Errorf("node %d stats %+v", n.id, st)
					}
					if st.Frames >= st.Sent {
						t.Errorf("node %d: %d frames for %d messages: nothing coalesced", n.id, st.Frames, st.Sent)
					}
				}
				if tc.viaRelay {
					if s := l.Relay.Stats(); s.PacketsSent == 0 {
						t.Fatal("nothing went through the relay")
					}
					for _, a := range nodes {
						for _, b := range nodes {
							if pi, _ := a.ms.Path(b.sk.Public()); a != b && pi.Direct.IsValid() {
								t.Fatalf("direct path %v with UDP blocked", pi.Direct)
							}
						}
					}
					if d := l.Net.Stats(); d.Delivered != 0 {
						t.Fatalf("%d UDP packets delivered with UDP blocked", d.Delivered)
					}
				}
			})
		})
	}
}

// TestLargeSnapshot: an 8 MiB MsgSnap travels in its own frame between small messages, in
// order, and is reported sent; one larger than MaxFrame is dropped and reported failed.
func TestLargeSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := newPair(t, Config{MaxFrame: 16 << 20}, Config{MaxFrame: 16 << 20})
		snap := func(size int) *raftpb.Message {
			return &raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(3),
				Snapshot: &raftpb.Snapshot{Data: bytes.Repeat([]byte("s"), size), Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(7), Term: proto.Uint64(3)}}}
		}
		sent := []*raftpb.Message{msg(1, 2, 1, 10), snap(8 << 20), msg(1, 2, 2, 10)}
		want := make([]*raftpb.Message, len(sent))
		for i, m := range sent {
			want[i] = proto.Clone(m).(*raftpb.Message)
		}
		a.tr.Send(sent)
		waitFor(t, 60*time.Second, "snapshot delivered", func() bool { return len(b.received(1)) == 3 })
		checkInOrder(t, "with snapshot", b.received(1), want)
		a.tr.Send([]*raftpb.Message{snap(17 << 20)})
		waitFor(t, 10*time.Second, "snapshot outcomes", func() bool { a.mu.Lock(); defer a.mu.Unlock(); return len(a.snaps) == 2 })
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.snaps[0] != nil || a.snaps[1] == nil || !strings.Contains(a.snaps[1].Error(), "too large") {
			t.Fatalf("snapshot statuses %v, want [nil, too large]", a.snaps)
		}
		if a.unreachable[2] != 1 {
			t.Fatalf("unreachable reports %v, want one for 2", a.unreachable)
		}
	})
}

// TestUntrustedRefused: a node not on the receiver's trust list has its connections closed
// with ErrCodeUntrusted; nothing it sends is delivered, the refusal is logged once at Warn on
// each side however often it retries, and its raft node hears the receiver is unreachable.
func TestUntrustedRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, false)
		a := l.start(t, 1, nil, key.SecretKey{}, Config{})
		c := l.start(t, 3, nil, key.SecretKey{}, Config{})
		c.tr.AddPeer(1, a.addr()) // c knows a, a does not trust c
		for i := range 300 {      // 30 s of heartbeats
			c.tr.Send([]*raftpb.Message{{Type: raftpb.MsgHeartbeat.Enum(), From: proto.Uint64(3), To: proto.Uint64(1), Commit: proto.Uint64(uint64(i))}})
			time.Sleep(100 * time.Millisecond)
		}
		if got := a.received(3); len(got) != 0 {
			t.Fatalf("delivered %d messages from an untrusted node", len(got))
		}
		st := a.tr.Stats()
		if st.Refused < 2 {
			t.Fatalf("a refused %d connections, want repeated refusals", st.Refused)
		}
		if st.Refused > 20 {
			t.Fatalf("a refused %d connections in 30 s: c does not back off\n%s", st.Refused, c.log)
		}
		if n := a.log.count(slog.LevelWarn, "refusing peer"); n != 1 {
			t.Fatalf("a logged %d refusal warnings, want 1:\n%s", n, a.log)
		}
		if n := c.log.count(slog.LevelWarn, "is not trusted"); n != 1 {
			t.Fatalf("c logged %d warnings naming the refusal, want 1:\n%s", n, c.log)
		}
		if c.unreachableCount(1) == 0 {
			t.Fatal("c's raft node never heard a was unreachable")
		}
	})
}

// TestSpoofedFromRefused: a trusted node may only send as its own raft id: a message claiming
// another node's raft id, or another raft id than the one registered for its NodeId, closes
// the connection with ErrCodeSpoofed and is not delivered; its honest messages are.
func TestSpoofedFromRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, false)
		a := l.start(t, 1, nil, key.SecretKey{}, Config{})
		b := l.start(t, 2, nil, key.SecretKey{}, Config{})
		c := l.start(t, 3, nil, key.SecretKey{}, Config{})
		meet(a, b, c)
		c.tr.Send([]*raftpb.Message{msg(3, 1, 1, 10)})
		waitFor(t, 10*time.Second, "honest message", func() bool { return len(a.received(3)) == 1 })
		for i, from := range []uint64{2, 99} {
			// Resent until it arrives: the first send after a refusal meets the closed
			// connection and is dropped at c.
			sendUntil(t, c, msg(from, 1, 5, 10), "refusal", func() bool { return a.tr.Stats().Refused >= uint64(i+1) })
			if got := a.received(from); len(got) != 0 {
				t.Fatalf("a delivered %d messages from %d sent by node 3", len(got), from)
			}
		}
		if !strings.Contains(a.log.String(), "may not speak for raft id 2") {
			t.Fatalf("refusal not logged with its reason:\n%s", a.log)
		}
		// c's later honest messages still arrive (a new connection).
		sendUntil(t, c, msg(3, 1, 2, 10), "honest message after the refusal", func() bool { return len(a.received(3)) >= 2 })
		if got := a.received(3); got[1].GetIndex() != 2 {
			t.Fatalf("delivered %v", got[1])
		}
	})
}

// TestPeerRestart: a peer that restarts (same key, same address, new process: new endpoint
// and transport) gets messages again on a new connection, in order, and can answer.
func TestPeerRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, a, b := newPair(t, Config{}, Config{})
		exchange(t, []*node{a, b}, 2, 10, 100)

		b.stop()
		b2 := l.start(t, 2, b.m, b.sk, Config{})
		meet(a, b2)
		idx := uint64(1000)
		waitFor(t, 30*time.Second, "restarted peer receives", func() bool {
			idx++
			a.tr.Send([]*raftpb.Message{msg(1, 2, idx, 10)})
			return len(b2.received(1)) > 0
		})
		first := b2.received(1)[0].GetIndex()
		var want []*raftpb.Message
		for i := first; i <= idx; i++ {
			want = append(want, msg(1, 2, i, 10))
		}
		for i := idx + 1; i <= idx+20; i++ {
			m := msg(1, 2, i, 10)
			want = append(want, proto.Clone(m).(*raftpb.Message))
			a.tr.Send([]*raftpb.Message{m})
		}
		waitFor(t, 10*time.Second, "all after reconnect", func() bool { return len(b2.received(1)) >= len(want) })
		checkInOrder(t, "after restart", b2.received(1), want)
		b2.tr.Send([]*raftpb.Message{msg(2, 1, 1, 10)})
		waitFor(t, 10*time.Second, "restarted peer answers", func() bool { return len(a.received(2)) == 21 })
		if st := a.tr.Stats(); st.Connects < 2 {
			t.Fatalf("a connected %d times, want a new connection after the restart", st.Connects)
		}
	})
}

// TestQueueOverflow: Send to a peer that cannot be reached never blocks; past QueueLen it
// drops, counts, and the raft node hears the peer is unreachable (and a dropped MsgSnap
// failed).
func TestQueueOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, false)
		a := l.start(t, 1, nil, key.SecretKey{}, Config{QueueLen: 8})
		hole := l.Machine() // nothing listens there and its packets are dropped
		l.Net.SetDrop(func(p natlab.Packet) bool { return p.Dst.Addr() == hole.IP() || p.Src.Addr() == hole.IP() })
		ghost := endpoint.NodeAddr{ID: key.GenerateSecretKey().Public(), Direct: []netip.AddrPort{netip.AddrPortFrom(hole.IP(), 41641)}}
		a.tr.AddPeer(9, EncodeAddr(ghost))

		a.tr.Send([]*raftpb.Message{msg(1, 9, 1, 10)}) // the sender takes it and starts dialing
		synctest.Wait()
		start := time.Now()
		var batch []*raftpb.Message
		for i := range 20 {
			batch = append(batch, msg(1, 9, uint64(i+2), 10))
		}
		batch = append(batch, &raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: proto.Uint64(1), To: proto.Uint64(9), Snapshot: &raftpb.Snapshot{}})
		a.tr.Send(batch)
		if !time.Now().Equal(start) {
			t.Fatal("Send waited")
		}
		if st := a.tr.Stats(); st.Dropped != 13 {
			t.Fatalf("dropped %d, want 13 (21 sent, 8 queued)", st.Dropped)
		}
		waitFor(t, 60*time.Second, "unreachable reported", func() bool { return a.unreachableCount(9) > 0 })
		waitFor(t, 60*time.Second, "everything dropped after the dial failed", func() bool { return a.tr.Stats().Dropped == 22 })
		a.mu.Lock()
		snaps := a.snaps
		a.mu.Unlock()
		if len(snaps) != 1 || snaps[0] == nil {
			t.Fatalf("snapshot statuses %v, want one failure", snaps)
		}
		// A message to a raft id nobody added is dropped too.
		a.tr.Send([]*raftpb.Message{msg(1, 77, 1, 1)})
		if st := a.tr.Stats(); st.Dropped != 23 || st.Sent != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestRemovePeerAndClose: after RemovePeer messages to that id are dropped and the peer's
// connection is closed; Close is idempotent, drops later sends and refuses new connections.
func TestRemovePeerAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := newPair(t, Config{}, Config{})
		exchange(t, []*node{a, b}, 1, 5, 10)
		a.tr.RemovePeer(2)
		synctest.Wait()
		before := a.tr.Stats()
		a.tr.Send([]*raftpb.Message{msg(1, 2, 100, 10)})
		if st := a.tr.Stats(); st.Dropped != before.Dropped+1 {
			t.Fatalf("send to a removed peer: %+v", st)
		}
		_ = b.tr.Close()
		_ = b.tr.Close()
		a.tr.AddPeer(2, b.addr())
		waitFor(t, 30*time.Second, "closed transport refuses", func() bool {
			a.tr.Send([]*raftpb.Message{msg(1, 2, 101, 10)})
			return a.unreachableCount(2) > 0
		})
		if got := len(b.received(1)); got != 5 {
			t.Fatalf("closed transport delivered: %d messages", got)
		}
		b.tr.Send([]*raftpb.Message{msg(2, 1, 1, 1)})
		if st := b.tr.Stats(); st.Dropped != 1 {
			t.Fatalf("send after Close: %+v", st)
		}
	})
}

// logRec is a slog handler recording every record as a line.
type logRec struct {
	mu    sync.Mutex
	lines []string
	lvls  []slog.Level
}

func (r *logRec) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRec) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", rec.Level, rec.Message)
	rec.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	r.mu.Lock()
	r.lines = append(r.lines, b.String())
	r.lvls = append(r.lvls, rec.Level)
	r.mu.Unlock()
	return nil
}
func (r *logRec) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRec) WithGroup(string) slog.Handler      { return r }

func (r *logRec) count(lvl slog.Level, substr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for i, l := range r.lines {
		if r.lvls[i] == lvl && strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

func (r *logRec) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// TestTrustRevokedAndStaleID: with Config.ID set, messages addressed to another raft id (an
// earlier incarnation of the receiver) are counted and not delivered; once the receiver stops
// trusting a sender, its next frame closes the connection and nothing more is delivered.
func TestTrustRevokedAndStaleID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := newPair(t, Config{ID: 1}, Config{})
		b.tr.AddPeer(5, a.addr()) // a's earlier incarnation, still in b's view
		b.tr.Send([]*raftpb.Message{msg(2, 5, 1, 10), msg(2, 1, 2, 10)})
		waitFor(t, 10*time.Second, "message to the live id", func() bool { return len(a.received(2)) == 1 })
		if st := a.tr.Stats(); st.Ignored != 1 || a.received(2)[0].GetTo() != 1 {
			t.Fatalf("stats %+v, delivered %v", st, a.received(2))
		}
		a.trusted.Set(b.sk.Public(), false)
		sendUntil(t, b, msg(2, 1, 3, 10), "refusal after trust revoked", func() bool { return a.tr.Stats().Refused >= 1 })
		if got := len(a.received(2)); got != 1 {
			t.Fatalf("delivered %d messages, want only the one before trust was revoked", got)
		}
		if !strings.Contains(a.log.String(), "is not trusted by this raft node") {
			t.Fatalf("refusal not logged:\n%s", a.log)
		}
	})
}

// TestCheckFromIncarnations: while a NodeId has two raft ids (a new incarnation added before
// the old one is removed) either may be used as From, whatever order they were added in;
// after RemovePeer only the remaining one; a raft id of another NodeId never.
func TestCheckFromIncarnations(t *testing.T) {
	ep, err := endpoint.New(endpoint.Options{SecretKey: key.GenerateSecretKey(), BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	tr := New(ep, func(key.PublicKey) bool { return true }, func(*raftpb.Message) {}, nil)
	defer tr.Close()
	x := endpoint.NodeAddr{ID: key.GenerateSecretKey().Public(), Direct: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}}
	y := endpoint.NodeAddr{ID: key.GenerateSecretKey().Public(), Direct: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:10")}}
	stranger := key.GenerateSecretKey().Public()
	tr.AddPeer(20, EncodeAddr(x)) // the new incarnation first (a snapshot's order)
	tr.AddPeer(10, EncodeAddr(x))
	tr.AddPeer(30, EncodeAddr(y))
	tr.AddPeer(40, []byte("garbage")) // refused: not added
	for _, tc := range []struct {
		node key.PublicKey
		from uint64
		ok   bool
	}{
		{x.ID, 10, true}, {x.ID, 20, true}, {x.ID, 30, false}, {x.ID, 99, false}, {x.ID, 0, false},
		{y.ID, 30, true}, {y.ID, 10, false},
		{stranger, 77, true}, {stranger, 10, false}, {stranger, 40, true},
	} {
		if err := tr.checkFrom(tc.node, tc.from); (err == nil) != tc.ok {
			t.Errorf("node %s from %d: err %v, want ok=%v", tc.node.ShortString(), tc.from, err, tc.ok)
		}
	}
	tr.RemovePeer(10)
	if err := tr.checkFrom(x.ID, 10); err == nil {
		t.Error("removed raft id still accepted")
	}
	if err := tr.checkFrom(x.ID, 20); err != nil {
		t.Errorf("remaining raft id refused: %v", err)
	}
	tr.RemovePeer(20)
	if err := tr.checkFrom(x.ID, 10); err != nil {
		t.Errorf("NodeId with no raft id left: %v", err)
	}
}

// TestBackoffOnClock: after a failed connect the sender waits on Config.Clock: with a fake
// clock that does not move, no new dial starts however much (bubble) time passes; advancing
// the clock by BackoffMin starts one.
func TestBackoffOnClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, false)
		clk := clock.NewFake(time.Now())
		hole := l.Machine()
		var quicToHole atomic.Int64
		l.Net.SetDrop(func(p natlab.Packet) bool {
			if p.Dst.Addr() != hole.IP() {
				return false
			}
			if !bytes.HasPrefix(p.Data, []byte(disco.Magic)) {
				quicToHole.Add(1)
			}
			return true
		})
		a := l.start(t, 1, nil, key.SecretKey{}, Config{Clock: clk, BackoffMin: time.Second, BackoffMax: 4 * time.Second})
		ghost := endpoint.NodeAddr{ID: key.GenerateSecretKey().Public(), Direct: []netip.AddrPort{netip.AddrPortFrom(hole.IP(), 41641)}}
		a.tr.AddPeer(9, EncodeAddr(ghost))
		a.tr.Send([]*raftpb.Message{msg(1, 9, 1, 10)})
		waitFor(t, 60*time.Second, "first dial fails", func() bool { return a.unreachableCount(9) == 1 })
		synctest.Wait()
		n := quicToHole.Load()
		if n == 0 {
			t.Fatal("no handshake packet was sent to the peer")
		}
		a.tr.Send([]*raftpb.Message{msg(1, 9, 2, 10)})
		time.Sleep(2 * time.Minute)
		if got := quicToHole.Load(); got != n {
			t.Fatalf("%d QUIC packets sent while the backoff clock stood still", got-n)
		}
		clk.Advance(time.Second)
		waitFor(t, 10*time.Second, "dial after the backoff", func() bool { return quicToHole.Load() > n })
	})
}
