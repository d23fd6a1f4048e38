package wal_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// storeModel is what one partition must hold across crashes: the entry appended at each
// base offset and the offset below which a Sync succeeded.
type storeModel struct {
	mu       sync.Mutex
	appended map[int64]wal.Batch
	acked    int64
}

// TestStoreCrashProperty: goroutines append to many partitions of one Store and Sync
// concurrently while checkpoints run; at a random point the filesystem crashes (cleanly,
// tearing the last writes, or keeping unsynced pages out of order). After every crash
// OpenStore and OpenLog succeed, every offset a Sync acknowledged is present exactly once
// with the bytes appended at it, and nothing else is (no garbage, no offset twice). Each seed
// runs several crash cycles; WAL_SEED / WAL_SEEDS as in TestCrashProperty.
func TestStoreCrashProperty(t *testing.T) {
	for _, seed := range seeds(t, 4) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { storeCrashProperty(t, seed, 4) })
	}
}

func storeCrashProperty(t *testing.T, seed uint64, cycles int) {
	r := rand.New(rand.NewPCG(seed, 0x5707e))
	fs := waltest.NewCrashFS()
	const parts = 8
	logOpts := wal.Options{SegmentBytes: 4096, IndexIntervalBytes: 256}
	storeOpts := wal.StoreOptions{SegmentBytes: 8192, Replay: logOpts}
	if seed%2 == 0 {
		// A tiny descriptor cap: files are closed and reopened all the time, under load
		// and across crashes.
		storeOpts.MaxOpenFiles = 8
	}
	models := make([]*storeModel, parts)
	for i := range models {
		models[i] = &storeModel{appended: map[int64]wal.Batch{}}
	}
	for cycle := range cycles {
		s := mustOpenStore(t, fs, storeOpts)
		logs := make([]*wal.Log, parts)
		for i := range logs {
			logs[i] = mustOpenLog(t, s, partDir(i), logOpts)
			verifyStoreModel(t, logs[i], models[i], fmt.Sprintf("cycle %d partition %d", cycle, i))
		}
		// Run writers until the crash.
		var crashed atomic.Bool
		var ops atomic.Int64
		crashAt := int64(50 + r.IntN(400))
		reached := make(chan struct{})
		var once sync.Once
		var wg sync.WaitGroup
		for g := range 4 {
			gr := rand.New(rand.NewPCG(seed, uint64(cycle*100+g)))
			wg.Go(func() {
				for n := 0; !crashed.Load(); n++ {
					p := gr.IntN(parts)
					l, m := logs[p], models[p]
					data := []byte(fmt.Sprintf("c%d g%d n%d p%d|", cycle, g, n, p))
					data = append(data, bytes.Repeat([]byte{byte(n)}, gr.IntN(300))...)
					count := int32(1 + gr.IntN(3))
					m.mu.Lock()
					base, err := l.Append(data, count, int64(n))
					if err == nil {
						m.appended[base] = wal.Batch{BaseOffset: base, LastOffset: base + int64(count) - 1, MaxTimestamp: int64(n), Data: data}
					}
					m.mu.Unlock()
					if err != nil {
						return
					}
					if gr.IntN(2) == 0 {
						if err := l.Sync(base + int64(count)); err == nil {
							m.mu.Lock()
							m.acked = max(m.acked, base+int64(count))
							m.mu.Unlock()
						} else if !crashed.Load() {
							t.Errorf("Sync before the crash: %v", err)
							return
						}
					}
					if g == 0 && gr.IntN(40) == 0 {
						if err := s.Checkpoint(); err != nil && !crashed.Load() {
							t.Errorf("Checkpoint before the crash: %v", err)
							return
						}
					}
					if ops.Add(1) == crashAt {
						once.Do(func() { close(reached) })
					}
				}
			})
		}
		writersDone := make(chan struct{})
		go func() {
			wg.Wait()
			close(writersDone)
		}()
		select {
		case <-reached:
		case <-writersDone: // every writer failed before the crash point (reported)
		}
		crashed.Store(true) // first: errors from here on are the crash's
		switch r.IntN(3) {
		case 0:
			fs.Crash()
		case 1:
			fs.CrashTear(r)
		default:
			fs.CrashReorder(r)
		}
		<-writersDone
		if t.Failed() {
			return
		}
	}
	s := mustOpenStore(t, fs, storeOpts)
	defer s.Close()
	for i := range parts {
		l := mustOpenLog(t, s, partDir(i), logOpts)
		verifyStoreModel(t, l, models[i], fmt.Sprintf("final partition %d", i))
		l.Close()
	}
}

// verifyStoreModel checks a recovered log against m and resets m to what survived.
func verifyStoreModel(t *testing.T, l *wal.Log, m *storeModel, what string) {
	t.Helper()
	if l.NextOffset() < m.acked {
		t.Fatalf("%s: NextOffset %d below the acknowledged offset %d", what, l.NextOffset(), m.acked)
	}
	got := readAll(t, l)
	kept := map[int64]wal.Batch{}
	next := l.StartOffset()
	for _, b := range got {
		if b.BaseOffset != next {
			t.Fatalf("%s: entry at %d, want %d", what, b.BaseOffset, next)
		}
		want, ok := m.appended[b.BaseOffset]
		if !ok {
			t.Fatalf("%s: entry at %d was never appended there", what, b.BaseOffset)
		}
		sameBatch(t, b, want)
		kept[b.BaseOffset] = want
		next = b.LastOffset + 1
	}
	if next != l.NextOffset() {
		t.Fatalf("%s: entries end at %d, NextOffset %d", what, next, l.NextOffset())
	}
	m.appended = kept
	m.acked = l.NextOffset() // everything recovered is durable after open
}
