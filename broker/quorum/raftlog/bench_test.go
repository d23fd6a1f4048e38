package raftlog_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/meshkafka/meshkafka/broker/quorum/raftlog"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// BenchmarkSave measures Save of 1 and of 64 entries of 100 bytes with a hard state, on
// the real disk, compacting as the quorum would (a snapshot every 10,000 entries), and
// reports the fsyncs per Save (target: 1, plus the occasional roll).
func BenchmarkSave(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			l, err := raftlog.Open(wal.OSFS(), filepath.Join(waltest.DiskDir(b), "quorum"), raftlog.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			data := make([]byte, 100)
			batch := make([]*raftpb.Entry, n)
			next := uint64(1)
			start := l.Stats()
			b.SetBytes(int64(n * len(data)))
			b.ReportAllocs()
			saves := 0
			for b.Loop() {
				for i := range batch {
					batch[i] = &raftpb.Entry{Index: new(next), Term: new(uint64(1)), Data: data}
					next++
				}
				if err := l.Save(hardState(1, 1, next-1), batch, nil); err != nil {
					b.Fatal(err)
				}
				saves++
				if next/10000 != (next-uint64(n))/10000 {
					if err := l.CreateSnapshot(next-1, nil, []byte("state")); err != nil {
						b.Fatal(err)
					}
				}
			}
			st := l.Stats()
			b.ReportMetric(float64(st.Fsyncs-start.Fsyncs)/float64(saves), "fsyncs/save")
		})
	}
}
