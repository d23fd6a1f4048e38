package replmesh

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/meshkafka/meshkafka/broker/quorum/raftmesh"
	"github.com/meshkafka/meshkafka/broker/replica"
)

// recorder is a Handler that records what the transport hands it.
type recorder struct {
	mu      sync.Mutex
	got     []replica.GroupMessage
	unreach map[uint64]int
	snaps   map[replica.GroupID][]bool
}

func newRecorder() *recorder {
	return &recorder{unreach: map[uint64]int{}, snaps: map[replica.GroupID][]bool{}}
}

func (r *recorder) Step(m replica.GroupMessage) { r.mu.Lock(); r.got = append(r.got, m); r.mu.Unlock() }
func (r *recorder) ReportUnreachable(id uint64) { r.mu.Lock(); r.unreach[id]++; r.mu.Unlock() }
func (r *recorder) ReportSnapshot(g replica.GroupID, to uint64, ok bool) {
	r.mu.Lock()
	r.snaps[g] = append(r.snaps[g], ok)
	r.mu.Unlock()
}

// bareTransports starts brokers 1 and 2 of a lab without their engines, each with a
// transport of its own (closed at cleanup), trusting each other; the caller attaches the
// handlers and adds the peers.
func bareTransports(t *testing.T) (a, b *broker) {
	l := newLab(t, false)
	a, b = l.start(t, 1), l.start(t, 2)
	a.stopEngine()
	b.stopEngine()
	a.tr = New(a.ep, Config{Trust: a.trusted.Trusts, ID: 1})
	b.tr = New(b.ep, Config{Trust: b.trusted.Trusts, ID: 2})
	t.Cleanup(func() { _ = a.tr.Close(); _ = b.tr.Close() })
	a.trusted.Set(b.sk.Public(), true)
	b.trusted.Set(a.sk.Public(), true)
	return a, b
}

// TestReportsToHandler: messages of several groups arrive with their groups, in order; a
// delivered MsgSnap is reported to its group as delivered; one to a peer that cannot be
// reached is reported failed, and the peer unreachable.
func TestReportsToHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := bareTransports(t)
		ra, rb := newRecorder(), newRecorder()
		a.tr.Attach(ra)
		b.tr.Attach(rb)
		a.tr.AddPeer(2, raftmesh.EncodeAddr(b.ep.Addr()))
		b.tr.AddPeer(1, raftmesh.EncodeAddr(a.ep.Addr()))
		snap := &raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(2),
			Snapshot: &raftpb.Snapshot{Data: []byte("s"), Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(5), Term: proto.Uint64(2)}}}
		sent := []replica.GroupMessage{
			{Group: gid(1), Msg: appMsg(1, 2, 1, 10)},
			{Group: gid(2), Msg: snap},
			{Group: gid(1), Msg: appMsg(1, 2, 2, 10)},
		}
		want := make([]replica.GroupMessage, len(sent))
		for i, m := range sent {
			want[i] = replica.GroupMessage{Group: m.Group, Msg: proto.Clone(m.Msg).(*raftpb.Message)}
		}
		a.tr.Send(sent)
		for range 600 {
			rb.mu.Lock()
			n := len(rb.got)
			rb.mu.Unlock()
			ra.mu.Lock()
			s := len(ra.snaps[gid(2)])
			ra.mu.Unlock()
			if n == len(want) && s == 1 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		rb.mu.Lock()
		if !equalMsgs(rb.got, want) {
			t.Fatalf("delivered %v, want %v", rb.got, want)
		}
		rb.mu.Unlock()
		ra.mu.Lock()
		if got := ra.snaps[gid(2)]; len(got) != 1 || !got[0] {
			t.Fatalf("snapshot reports %v, want [true]", got)
		}
		ra.mu.Unlock()

		// A peer that is gone: the MsgSnap is reported failed, the peer unreachable.
		b.stop()
		snap2 := proto.Clone(snap).(*raftpb.Message)
		for range 600 {
			a.tr.Send([]replica.GroupMessage{{Group: gid(3), Msg: proto.Clone(snap2).(*raftpb.Message)}})
			time.Sleep(100 * time.Millisecond)
			ra.mu.Lock()
			failed := len(ra.snaps[gid(3)]) > 0 && !ra.snaps[gid(3)][len(ra.snaps[gid(3)])-1]
			unreach := ra.unreach[2]
			ra.mu.Unlock()
			if failed && unreach > 0 {
				return
			}
		}
		t.Fatalf("no failure reported: snaps %v, unreachable %v", ra.snaps, ra.unreach)
	})
}

// TestDeliveredEntriesKeepTheirBytes: delivered entries refer into the frame they came in
// (no copy), so every frame has a buffer of its own: entries delivered earlier keep their
// bytes while later frames of the same size arrive on the stream.
func TestDeliveredEntriesKeepTheirBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := bareTransports(t)
		rb := newRecorder()
		b.tr.Attach(rb)
		a.tr.AddPeer(2, raftmesh.EncodeAddr(b.ep.Addr()))
		const frames = 5
		var want []replica.GroupMessage
		for i := range frames {
			m := replica.GroupMessage{Group: gid(1), Msg: appMsg(1, 2, uint64(i+1), 4096)}
			want = append(want, replica.GroupMessage{Group: m.Group, Msg: proto.Clone(m.Msg).(*raftpb.Message)})
			a.tr.Send([]replica.GroupMessage{m})
			for range 600 { // one frame at a time: the next is sent once this one arrived
				rb.mu.Lock()
				n := len(rb.got)
				rb.mu.Unlock()
				if n == i+1 {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		rb.mu.Lock()
		defer rb.mu.Unlock()
		if !equalMsgs(rb.got, want) {
			t.Fatalf("delivered entries changed after later frames arrived")
		}
		if st := a.tr.Stats(); st.Frames != frames {
			t.Fatalf("%d frames, want %d", st.Frames, frames)
		}
	})
}
