package interop

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/interop/irohnode"
	"github.com/meshkafka/meshkafka/mesh/gossip"
	"github.com/meshkafka/meshkafka/mesh/gossip/proto"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// recvLog records when each node received each message.
type recvLog struct {
	mu     sync.Mutex
	at     map[string]map[int]time.Time
	notify chan struct{}
}

func newRecvLog() *recvLog {
	return &recvLog{at: map[string]map[int]time.Time{}, notify: make(chan struct{}, 1)}
}

func (l *recvLog) add(content string, node int, at time.Time) {
	l.mu.Lock()
	m := l.at[content]
	if m == nil {
		m = map[int]time.Time{}
		l.at[content] = m
	}
	if _, dup := m[node]; !dup {
		m[node] = at
	}
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

// wait returns the receipt times of content once want nodes have it, or what arrived by the
// deadline.
func (l *recvLog) wait(ctx context.Context, content string, want int, deadline time.Duration) []time.Time {
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for {
		l.mu.Lock()
		var ts []time.Time
		for _, t := range l.at[content] {
			ts = append(ts, t)
		}
		l.mu.Unlock()
		if len(ts) >= want {
			return ts
		}
		select {
		case <-l.notify:
		case <-timer.C:
			return ts
		case <-ctx.Done():
			return ts
		}
	}
}

type benchSwarm struct {
	n         int
	log       *recvLog
	broadcast func(ctx context.Context, from int, content []byte) error
}

// goBenchSwarm: n Go gossip nodes over QUIC on loopback, each joining through a random earlier
// node.
func goBenchSwarm(ctx context.Context, b *testing.B, n int, topic proto.TopicID) *benchSwarm {
	rng := mrand.New(mrand.NewPCG(1, 2))
	nodes := make([]*goGossipNode, n)
	for i := range nodes {
		nodes[i] = newGoGossipNode(b, nil)
	}
	for _, a := range nodes {
		for _, c := range nodes {
			if a != c {
				a.learn(c.id, c.addrPort())
			}
		}
	}
	log := newRecvLog()
	subs := make([]*gossip.Topic, n)
	var wg sync.WaitGroup
	for i, nd := range nodes {
		var boot []key.PublicKey
		if i > 0 {
			boot = []key.PublicKey{nodes[rng.IntN(i)].id}
		}
		s, err := nd.g.Subscribe(ctx, topic, boot)
		if err != nil {
			b.Fatal(err)
		}
		subs[i] = s
		joined := make(chan struct{})
		wg.Go(func() {
			once := sync.Once{}
			if i == 0 {
				once.Do(func() { close(joined) })
			}
			for e := range s.Events() {
				switch e.Kind {
				case gossip.Joined:
					once.Do(func() { close(joined) })
				case gossip.Received:
					log.add(string(e.Content), i, time.Now())
				}
			}
		})
		select {
		case <-joined:
		case <-ctx.Done():
			b.Fatalf("go node %d did not join", i)
		}
	}
	b.Cleanup(func() {
		for _, s := range subs {
			_ = s.Close()
		}
		wg.Wait()
	})
	return &benchSwarm{n: n, log: log, broadcast: func(ctx context.Context, from int, c []byte) error {
		return subs[from].Broadcast(ctx, c)
	}}
}

// rustBenchSwarm: n Rust nodes in one driver, each joining through a random earlier node;
// receipt times are taken when the driver's event reaches Go.
func rustBenchSwarm(ctx context.Context, b *testing.B, n int, topic proto.TopicID) *benchSwarm {
	rng := mrand.New(mrand.NewPCG(1, 2))
	d := irohnode.Start(b)
	nodes := make([]*irohnode.Node, n)
	for i := range nodes {
		nd, err := d.NewNode(ctx, irohnode.NodeOptions{Name: fmt.Sprint("b", i)})
		if err != nil {
			b.Fatal(err)
		}
		nodes[i] = nd
	}
	for _, a := range nodes {
		for _, c := range nodes {
			if a != c {
				if err := a.AddNodeAddr(ctx, c.Direct()); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	subs := make([]*irohnode.Sub, n)
	index := map[string]int{}
	for i, nd := range nodes {
		var boot []string
		if i > 0 {
			boot = []string{nodes[rng.IntN(i)].ID}
		}
		s, err := nd.Subscribe(ctx, topic, boot)
		if err != nil {
			b.Fatal(err)
		}
		subs[i] = s
		index[s.Handle] = i
		if i > 0 {
			if _, err := s.WaitEvent(ctx, "joined", nil); err != nil {
				b.Fatalf("rust node %d did not join: %v", i, err)
			}
		}
	}
	log := newRecvLog()
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			e, err := d.WaitEvent(rctx, func(e *irohnode.Event) bool { return e.Name == "gossip" && e.Type == "received" })
			if err != nil {
				return
			}
			log.add(string(e.Content), index[e.Sub], time.Now())
		}
	})
	b.Cleanup(func() { cancel(); wg.Wait() })
	return &benchSwarm{n: n, log: log, broadcast: func(ctx context.Context, from int, c []byte) error {
		return subs[from].Broadcast(ctx, c)
	}}
}

// BenchmarkGossipBroadcast measures broadcast delivery on a 20-node swarm over QUIC on loopback,
// ours (Go nodes, one process) and Rust iroh-gossip 0.28.1 (one driver process), in the same run:
// the time from Broadcast until the last of the other 19 nodes received the message (p50, p99)
// and the delivery ratio. After a warm-up of one message per node, each iteration sends 10
// messages from rotating senders, one at a time, each given up to 3 s. Rust receipt times include
// the driver's JSON event hop (stdout of the Node.js process to the Go test).
func BenchmarkGossipBroadcast(b *testing.B) {
	irohnode.RequireNamespace(b)
	const n = 20
	for _, impl := range []string{"ours", "rust"} {
		b.Run(fmt.Sprintf("nodes=%d/impl=%s", n, impl), func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			var topic proto.TopicID
			_, _ = rand.Read(topic[:])
			var sw *benchSwarm
			if impl == "ours" {
				sw = goBenchSwarm(ctx, b, n, topic)
			} else {
				sw = rustBenchSwarm(ctx, b, n, topic)
			}
			time.Sleep(time.Second) // let the views settle
			// Warm up: one message from every node lets Plumtree prune its eager graph to a
			// tree, so what follows is the steady state.
			seq := 0
			for from := range n {
				seq++
				c := fmt.Sprintf("warmup %s %d %d", impl, seq, time.Now().UnixNano())
				if err := sw.broadcast(ctx, from, []byte(c)); err != nil {
					b.Fatal(err)
				}
				sw.log.wait(ctx, c, n-1, 3*time.Second)
			}
			var lat []time.Duration
			delivered, expected := 0, 0
			for b.Loop() {
				for range 10 {
					seq++
					from := seq % n
					c := fmt.Sprintf("bench %s %d %d", impl, seq, time.Now().UnixNano())
					t0 := time.Now()
					if err := sw.broadcast(ctx, from, []byte(c)); err != nil {
						b.Fatal(err)
					}
					ts := sw.log.wait(ctx, c, n-1, 3*time.Second)
					delivered += len(ts)
					expected += n - 1
					if len(ts) == n-1 {
						lat = append(lat, slices.MaxFunc(ts, func(a, b time.Time) int { return a.Compare(b) }).Sub(t0))
					}
				}
			}
			slices.Sort(lat)
			pct := func(p float64) float64 {
				if len(lat) == 0 {
					return 0
				}
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds())
			}
			b.ReportMetric(pct(0.50), "p50-us")
			b.ReportMetric(pct(0.99), "p99-us")
			b.ReportMetric(100*float64(delivered)/float64(expected), "delivery-%")
			b.ReportMetric(0, "ns/op")
		})
	}
}
