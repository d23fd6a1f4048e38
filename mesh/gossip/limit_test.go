package gossip

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/gossip/proto"
)

// Per-peer and total budgets: a burst of two seconds' worth, refilled at the rate; one peer's
// flood does not use another's budget but the total binds all; the peer table stays bounded.
func TestInLimiterBudgets(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_000_000, 0))
	l := newInLimiter(InLimits{PeerFrames: 10, PeerBytes: 1000, TotalFrames: 30, TotalBytes: -1}, clk)
	a, b := proto.Key{1}, proto.Key{2}
	count := func(p proto.Key, n, size int) (ok int) {
		for range n {
			if y, _ := l.allow(p, size); y {
				ok++
			}
		}
		return ok
	}
	if got := count(a, 100, 1); got != 20 {
		t.Fatalf("peer a: %d frames of a flood allowed, want the burst of 20", got)
	}
	if got := count(b, 100, 200); got != 10 {
		t.Fatalf("peer b, 200-byte frames: %d allowed, want 10 (2000-byte burst)", got)
	}
	clk.Advance(500 * time.Millisecond)
	if got := count(a, 100, 1); got != 5 {
		t.Fatalf("after 0.5 s: %d allowed, want 5", got)
	}
	// The total (30 frames/s, burst 60) binds many peers: 60 - 35 used so far + 15 refilled.
	clk.Advance(2 * time.Second)
	total := 0
	for i := range 100 {
		total += count(proto.Key{byte(i), 9}, 5, 1)
	}
	if total != 60 {
		t.Fatalf("100 fresh peers got %d frames through, want the total burst of 60", total)
	}
	if l.droppedFrames() == 0 {
		t.Fatal("drops not counted")
	}
	for i := range 3 * maxLimitedPeers {
		var k proto.Key
		k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
		l.allow(k, 1)
	}
	l.mu.Lock()
	n := len(l.peers)
	l.mu.Unlock()
	if n > maxLimitedPeers {
		t.Fatalf("%d peer buckets, bound %d", n, maxLimitedPeers)
	}
}

// A peer flooding the topic gets its burst through and nothing more: the rest is dropped
// before it is decoded, so the node holds (and relays) only what the budget allows.
func TestFloodFromOnePeerIsDropped(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_000_000, 0))
	net := newMemNet()
	tn := startNode(t, net, func(c *Config) {
		c.Clock = clk
		c.InLimits = InLimits{PeerFrames: 10, PeerBytes: -1, TotalFrames: -1, TotalBytes: -1}
	})
	sub, err := tn.g.Subscribe(t.Context(), testTopic, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tn.g.Close(); net.wg.Wait() })
	r := dialRaw(t, net, tn.id)
	t.Cleanup(func() { _ = r.conn.Close(0, "done") }) // before the node's Close (cleanups run last first)
	go func() { _, _ = io.Copy(io.Discard, r.st) }()
	frame := func(m proto.Msg) []byte {
		f, err := proto.AppendFrame(nil, testTopic, m, proto.DefaultMaxMessageSize)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	var flood []byte
	flood = append(flood, frame(proto.Join{Data: proto.EncodePeerData(proto.AddrInfo{})})...)
	const n = 1000
	for i := range n {
		c := []byte(fmt.Sprintf("flood-%d", i))
		flood = append(flood, frame(proto.Gossip{ID: proto.IDOf(c), Content: c})...)
	}
	go func() { _, _ = r.st.Write(flood) }()
	want := uint64(n + 1 - 20) // the burst is 20 frames, the Join one of them
	for i := 0; tn.g.InDropped() < want; i++ {
		if i > 60_000 {
			t.Fatalf("dropped %d of the flood, want %d", tn.g.InDropped(), want)
		}
		time.Sleep(time.Millisecond) // polling a count the reader drives, not a deadline
	}
	clk.Advance(time.Second) // ten more frames' worth
	marker := []byte("marker")
	go func() { _, _ = r.st.Write(frame(proto.Gossip{ID: proto.IDOf(marker), Content: marker})) }()
	got := 0
	for e := range sub.Events() {
		if e.Kind != Received {
			continue
		}
		if string(e.Content) == "marker" {
			break
		}
		got++
	}
	if got != 19 || tn.g.InDropped() != want {
		t.Fatalf("%d flood messages reached the topic (want 19), %d dropped (want %d)", got, tn.g.InDropped(), want)
	}
}
