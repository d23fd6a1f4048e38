package replica

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

type nopSM struct{}

func (nopSM) Apply([]*raftpb.Entry)     {}
func (nopSM) Restore(*raftpb.Snapshot)  {}
func (nopSM) LeaderChanged(_, _ uint64) {}

// BenchmarkPropose: 3 Engines on a LocalNet, all groups led by engine 1; 64 clients propose
// 100-byte entries round-robin over the groups and wait for each commit (acks=all). Reports
// proposals/s and the leader's and the followers' Sync calls per proposal. Sync is counted,
// not performed (sync=0), or takes 1 ms like a fast disk's fsync (sync=1ms): proposals that
// arrive during a Sync share the next one, whatever their group.
func BenchmarkPropose(b *testing.B) {
	for _, lat := range []time.Duration{0, time.Millisecond} {
		for _, groups := range []int{1, 100, 1000} {
			b.Run(fmt.Sprintf("sync=%v/groups=%d", lat, groups), func(b *testing.B) { benchPropose(b, groups, lat) })
		}
	}
}

func benchPropose(b *testing.B, groups int, lat time.Duration) {
	const clients = 64
	ln := NewLocalNet()
	var syncs [4]atomic.Int64
	var engs []*Engine
	for id := uint64(1); id <= 3; id++ {
		e, err := New(Config{ID: id, Transport: ln.Endpoint(id), Sync: func() error {
			syncs[id].Add(1)
			if lat > 0 {
				time.Sleep(lat)
			}
			return nil
		},
			Log: testLog()})
		if err != nil {
			b.Fatal(err)
		}
		ln.Endpoint(id).Attach(e)
		engs = append(engs, e)
	}
	b.Cleanup(func() {
		for _, e := range engs {
			e.Stop()
		}
		ln.Close()
	})
	for _, e := range engs {
		for i := range groups {
			if err := e.AddGroup(gid(i), NewMemoryStorage(), nopSM{}, []uint64{1, 2, 3}); err != nil {
				b.Fatal(err)
			}
		}
	}
	for i := range groups {
		for {
			st, _ := engs[0].Status(gid(i))
			if st.Leader == 1 {
				break
			}
			if st.Leader == 0 {
				engs[0].Campaign(gid(i))
			} else {
				engs[st.Leader-1].TransferLeader(gid(i), 1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	data := make([]byte, 100)
	var next atomic.Int64
	var failed atomic.Int64
	var before [4]int64
	for i := 1; i <= 3; i++ {
		before[i] = syncs[i].Load()
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				p, err := engs[0].Propose(context.Background(), gid(int(n)%groups), data)
				if err == nil {
					err = <-p.Committed
				}
				if err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d proposals failed", f)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "proposals/s")
	b.ReportMetric(float64(syncs[1].Load()-before[1])/float64(b.N), "leader-syncs/op")
	b.ReportMetric(float64(syncs[2].Load()-before[2]+syncs[3].Load()-before[3])/float64(2*b.N), "follower-syncs/op")
}
