package raftnet

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// msg is a test message: from, to, whether it is a snapshot, and a body.
type msg struct {
	from, to uint64
	snap     bool
	body     *string
}

// peer records what the network tells it.
type peer struct {
	mu        sync.Mutex
	got       []string
	failed    []uint64
	snapshots map[uint64][]bool
}

func (p *peer) record(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f()
}

func newNet(queueMax int) *Net[msg, *peer] {
	return New(Config[msg, *peer]{
		QueueMax: queueMax,
		Ends:     func(m msg) (uint64, uint64, bool) { return m.from, m.to, m.snap },
		Clone: func(m msg) msg {
			b := *m.body
			m.body = &b
			return m
		},
		Step: func(_ context.Context, p *peer, m msg) bool {
			p.record(func() { p.got = append(p.got, *m.body) })
			return true
		},
		Failed: func(p *peer, m msg) { p.record(func() { p.failed = append(p.failed, m.to) }) },
		SnapshotDone: func(p *peer, m msg, ok bool) {
			p.record(func() {
				if p.snapshots == nil {
					p.snapshots = map[uint64][]bool{}
				}
				p.snapshots[m.to] = append(p.snapshots[m.to], ok)
			})
		},
	})
}

func str(s string) *string { return &s }

func TestDeliverCutIsolateDrop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNet(16)
		defer n.Close()
		p1, p2, p3 := &peer{}, &peer{}, &peer{}
		n.End(1).Attach(p1)
		n.End(2).Attach(p2)
		n.End(3).Attach(p3)

		body := str("a")
		n.End(1).Send([]msg{{from: 1, to: 2, body: body}})
		*body = "changed after send" // Send copied it
		synctest.Wait()
		if len(p2.got) != 1 || p2.got[0] != "a" {
			t.Fatalf("2 got %q, want [a]", p2.got)
		}

		n.Cut(2, 1)
		n.End(1).Send([]msg{{from: 1, to: 2, body: str("cut")}, {from: 1, to: 3, body: str("b")}})
		synctest.Wait()
		if len(p2.got) != 1 || len(p3.got) != 1 || p3.got[0] != "b" {
			t.Fatalf("after cut: 2 got %q, 3 got %q", p2.got, p3.got)
		}
		if len(p1.failed) != 1 || p1.failed[0] != 2 {
			t.Fatalf("1 was told of failures to %v, want [2]", p1.failed)
		}

		n.Heal()
		n.Isolate(3)
		n.End(1).Send([]msg{{from: 1, to: 3, body: str("isolated")}, {from: 1, to: 2, body: str("c")}})
		synctest.Wait()
		if len(p3.got) != 1 || len(p2.got) != 2 {
			t.Fatalf("after isolate: 2 got %q, 3 got %q", p2.got, p3.got)
		}

		n.Heal()
		n.SetDrop(func(m msg) bool { return *m.body == "drop" })
		n.End(2).Send([]msg{{from: 2, to: 1, body: str("drop")}, {from: 2, to: 1, body: str("keep")}})
		n.End(2).Send([]msg{{from: 2, to: 9, body: str("nobody")}})
		synctest.Wait()
		if len(p1.got) != 1 || p1.got[0] != "keep" {
			t.Fatalf("1 got %q, want [keep]", p1.got)
		}
		if len(p2.failed) != 2 || n.End(2).Sends() != 2 {
			t.Fatalf("2: failed %v, sends %d; want 2 failures in 2 sends", p2.failed, n.End(2).Sends())
		}
	})
}

func TestSnapshotFateAndQueueBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNet(1)
		defer n.Close()
		p1, p2 := &peer{}, &peer{}
		n.End(1).Attach(p1)
		n.End(2).Attach(p2)

		n.End(1).Send([]msg{{from: 1, to: 2, snap: true, body: str("s")}})
		synctest.Wait()
		if got := p1.snapshots[2]; len(got) != 1 || !got[0] {
			t.Fatalf("snapshot fate %v, want [true]", got)
		}

		n.End(2).Attach(nil) // detached: delivered to nobody, so the snapshot failed
		n.End(1).Send([]msg{{from: 1, to: 2, snap: true, body: str("s2")}})
		synctest.Wait()
		if got := p1.snapshots[2]; len(got) != 2 || got[1] {
			t.Fatalf("snapshot fate %v, want [true false]", got)
		}

		// The queue holds one message: with the end's goroutine blocked out by a held lock,
		// a second send overflows and is reported.
		e2 := n.End(2)
		e2.mu.Lock()
		e2.queue = append(e2.queue, msg{from: 1, to: 2, body: str("queued")})
		e2.mu.Unlock()
		n.End(1).Send([]msg{{from: 1, to: 2, body: str("overflow")}})
		if len(p1.failed) != 1 {
			t.Fatalf("failed %v, want the overflow reported", p1.failed)
		}

		n.End(2).AddPeer(1, []byte("addr"))
		if got := string(n.End(2).Peers()[1]); got != "addr" {
			t.Fatalf("peer 1 = %q", got)
		}
		n.End(2).RemovePeer(1)
		if len(n.End(2).Peers()) != 0 {
			t.Fatal("RemovePeer kept the peer")
		}
	})
}
