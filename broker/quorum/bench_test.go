package quorum

import (
	"log/slog"
	"testing"
	"time"
)

// BenchmarkProposeSingleNode: propose-and-apply round trips on a one-voter group over
// MemoryStorage (the shell's own overhead: no fsync, no network).
func BenchmarkProposeSingleNode(b *testing.B) {
	ln := NewLocalNet()
	defer ln.Close()
	tr := ln.Transport(1)
	n, err := Start(Config{ID: 1, Storage: NewMemoryStorage(), Transport: tr, SM: &logSM{},
		Log: slog.New(slog.DiscardHandler), TickInterval: time.Millisecond, Voters: 1,
		SnapshotEvery: 1000, Bootstrap: peersOf(1)})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Stop()
	for {
		if id, _ := n.Leader(); id == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	data := []byte("0123456789abcdef0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := n.Propose(b.Context(), data); err != nil {
			b.Fatal(err)
		}
	}
}
