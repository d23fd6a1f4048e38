package replica

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// cycles is the number of fault cycles of TestChaosFaultCycles: 10 by default, REPLICA_CYCLES
// or CHAOS_CYCLES to run more (`go tool task chaos` sets CHAOS_CYCLES=100 and runs the tests
// named *Chaos*).
func cycles(t *testing.T) int {
	s := os.Getenv("REPLICA_CYCLES")
	if s == "" {
		s = os.Getenv("CHAOS_CYCLES")
	}
	if s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("fault cycles %q", s)
		}
		return n
	}
	return 10
}

// TestChaosFaultCycles: 3 replicas × 6 groups under continuous proposals while, each cycle, one
// fault hits (a node isolated, a link cut, a node stopped and restarted, messages dropped at
// random) and heals. Checked throughout (checker): at most one leader per group and term, one
// entry per committed index on every replica. At the end every proposal that was reported
// committed is applied, at the index and with the data it was acknowledged with, on every
// replica.
func TestChaosFaultCycles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const groups = 6
		rng := rand.New(rand.NewPCG(1, 2))
		c := newCluster(t, 3, groups)
		type ack struct {
			g     GroupID
			index uint64
			data  string
		}
		var mu sync.Mutex
		var acked []ack
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var nodeMu sync.Mutex // guards c.nodes[*].eng against the fault loop's stop/restart
		engineOf := func(id uint64) *Engine {
			nodeMu.Lock()
			defer nodeMu.Unlock()
			return c.nodes[id].eng
		}
		for gi := range groups {
			g := gid(gi)
			wg.Go(func() {
				for seq := 0; ctx.Err() == nil; seq++ {
					sent := false
					for _, id := range c.voters {
						e := engineOf(id)
						if e == nil {
							continue
						}
						d := fmt.Sprintf("%v-%d", g.Partition, seq)
						p, err := e.Propose(ctx, g, []byte(d))
						if err != nil {
							continue
						}
						sent = true
						if err := <-p.Committed; err == nil {
							mu.Lock()
							acked = append(acked, ack{g, p.Index, d})
							mu.Unlock()
						}
						break
					}
					// Pace the proposals: in the bubble, time moves only when every goroutine
					// waits, so a proposer that never sleeps would stop the clock.
					if sent {
						time.Sleep(tick)
					} else {
						time.Sleep(tick)
					}
				}
			})
		}
		n := cycles(t)
		for i := range n {
			victim := c.voters[rng.IntN(len(c.voters))]
			other := c.voters[(int(victim)+rng.IntN(2))%len(c.voters)]
			switch kind := i % 4; kind {
			case 0:
				c.net.Isolate(victim)
			case 1:
				c.net.Cut(victim, other)
			case 2:
				nodeMu.Lock()
				c.stop(victim)
				nodeMu.Unlock()
			case 3:
				seed := rng.Uint64()
				var dmu sync.Mutex
				drng := rand.New(rand.NewPCG(seed, 3))
				c.net.SetDrop(func(GroupMessage) bool {
					dmu.Lock()
					defer dmu.Unlock()
					return drng.IntN(4) == 0
				})
			}
			time.Sleep(time.Duration(10+rng.IntN(40)) * tick)
			c.net.Heal()
			c.net.SetDrop(nil)
			nodeMu.Lock()
			if c.nodes[victim].eng == nil {
				c.restart(victim)
			}
			nodeMu.Unlock()
			time.Sleep(time.Duration(10+rng.IntN(20)) * tick)
		}
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < n {
			t.Fatalf("only %d proposals committed in %d cycles", len(acked), n)
		}
		// Everything acknowledged is applied everywhere: commit one more entry per group, wait
		// for it on every replica, then look the acknowledged entries up.
		for _, g := range c.groups {
			p := c.propose(c.leader(g), g, "end")
			for _, id := range c.voters {
				c.waitApplied(id, g, p.Index)
			}
		}
		c.chk.mu.Lock()
		defer c.chk.mu.Unlock()
		for _, a := range acked {
			got, ok := c.chk.applied[a.g][a.index]
			if !ok || !stringsHasSuffixQuoted(got, a.data) {
				t.Errorf("acknowledged %q at %v/%d, applied %q", a.data, a.g, a.index, got)
			}
		}
		t.Logf("%d cycles, %d proposals committed", n, len(acked))
	})
}

// stringsHasSuffixQuoted reports whether a checker key ("term/type/%q") carries data.
func stringsHasSuffixQuoted(key, data string) bool {
	q := strconv.Quote(data)
	return len(key) >= len(q) && key[len(key)-len(q):] == q
}
