package raftstore_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// BenchmarkAppendCommit: a Ready round's storage work on an in-memory file system: Append
// 16 data entries (one 1 KiB or 16 KiB Kafka batch each), SetHardState, one wal.Store commit,
// then read the round's entries back (raft applying them: served from the entry cache).
// Reports ns and allocations per entry.
func BenchmarkAppendCommit(b *testing.B) {
	for _, size := range []int{1 << 10, 16 << 10} {
		b.Run(fmt.Sprint("batch=", size), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			n := &node{t: b, fs: newFS(b), big: true}
			n.mustOpen()
			defer n.close()
			batch := makeBatch(r, 16, 1, 1)
			body := make([]byte, size)
			batch = append(batch[:61:61], body...)
			const per = 16
			idx := uint64(0)
			b.SetBytes(int64(len(batch) * per))
			b.ReportAllocs()
			for b.Loop() {
				ents := make([]*raftpb.Entry, per)
				for k := range ents {
					idx++
					ents[k] = &raftpb.Entry{Index: new(idx), Term: new(uint64(1)), Data: append([]byte(nil), batch...)}
				}
				fixBatch(ents)
				if err := n.s.Append(ents); err != nil {
					b.Fatal(err)
				}
				if err := n.s.SetHardState(&raftpb.HardState{Term: new(uint64(1)), Commit: new(idx)}); err != nil {
					b.Fatal(err)
				}
				if err := n.ws.Commit(); err != nil {
					b.Fatal(err)
				}
				got, err := n.s.Entries(idx-per+1, idx+1, 1<<30)
				if err != nil || len(got) != per {
					b.Fatalf("Entries: %d, %v", len(got), err)
				}
				if idx%(per*64) == 0 {
					if err := n.ws.Checkpoint(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
