package wal_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
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
// tearing the last writes, or keeping unsynced pages out of order), or fsyncs start failing
// the Linux way, or the disk fills up (then the Store is closed and reopened in-process, and
// half the time the power is cut too). After every crash
// OpenStore and OpenLog succeed, every offset a Sync acknowledged is present exactly once
// with the bytes appended at it, and nothing else is (no garbage, no offset twice). Each seed
// runs 4 crash cycles (32 in the default suite); WAL_SEED / WAL_SEEDS as in TestCrashProperty,
// and WAL_WRITERS=1 makes a seed deterministic (one writer, which also injects the crash).
func TestStoreCrashProperty(t *testing.T) {
	runSeeds(t, 8, func(t *testing.T, seed uint64) { storeCrashProperty(t, seed, 4) })
}

func storeCrashProperty(t *testing.T, seed uint64, cycles int) {
	r := rand.New(rand.NewPCG(seed, 0x5707e))
	fs := waltest.NewCrashFS()
	const parts = 8
	writers := 4
	if v := os.Getenv("WAL_WRITERS"); v != "" {
		writers, _ = strconv.Atoi(v)
	}
	logOpts := wal.Options{SegmentBytes: 4096, IndexIntervalBytes: 256}
	storeOpts := wal.StoreOptions{SegmentBytes: 8192, Replay: logOpts}
	if seed%2 == 0 {
		// A tiny descriptor cap: files are closed and reopened all the time, under load
		// and across crashes.
		storeOpts.MaxOpenFiles = 8
	}
	if seed%3 == 1 {
		// Checkpoints sync the whole filesystem (syncfs) instead of each log.
		storeOpts.SyncFSMinLogs = 1
	}
	var partitionFsyncs, fsSyncs int64
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
		var crashed, stop atomic.Bool // crashed: errors are expected from now on
		var ops atomic.Int64
		crashAt := int64(50 + r.IntN(400))
		mode := r.IntN(5)
		var once sync.Once
		// inject crashes the filesystem or starts the failures; it runs in the writer that
		// reaches the crash point (so one writer is deterministic: WAL_WRITERS=1).
		inject := func() {
			crashed.Store(true) // first: errors from here on are the crash's
			t.Logf("cycle %d: mode %d after %d ops", cycle, mode, ops.Load())
			switch mode {
			case 0, 1, 2:
				waltest.CrashBy(fs, mode, r)
			case 3:
				// Linux-style failed fsyncs (of the journal or of a checkpoint's
				// partition file): the Store fails stop while the writers go on.
				fs.FailSyncs(1+r.IntN(2), errors.New("EIO"))
			case 4:
				// The disk fills up: short writes and ENOSPC.
				fs.SetWriteLimit(r.Int64N(4096))
			}
			if mode <= 2 {
				stop.Store(true)
			}
		}
		var wg sync.WaitGroup
		for g := range writers {
			gr := rand.New(rand.NewPCG(seed, uint64(cycle*100+g)))
			wg.Go(func() {
				for n := 0; !stop.Load() && ops.Load() < crashAt+1000; n++ {
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
					if gr.IntN(8) == 0 {
						// A fetch racing with appends, syncs, checkpoints (which drop cold
						// logs' sealed indexes) and descriptor evictions.
						from := l.StartOffset() + gr.Int64N(max(1, base-l.StartOffset()))
						bs, err := l.Read(from, 1+gr.IntN(2000))
						if err != nil && !crashed.Load() {
							t.Errorf("Read(%d) before the crash: %v", from, err)
							return
						}
						m.mu.Lock()
						for _, b := range bs {
							if want, ok := m.appended[b.BaseOffset]; !ok || !bytes.Equal(b.Data, want.Data) {
								t.Errorf("Read(%d) returned an entry at %d that was not appended there", from, b.BaseOffset)
							}
						}
						m.mu.Unlock()
					}
					if g == 0 && gr.IntN(40) == 0 {
						if err := s.Checkpoint(); err != nil && !crashed.Load() {
							t.Errorf("Checkpoint before the crash: %v", err)
							return
						}
					}
					if ops.Add(1) == crashAt {
						once.Do(inject)
					}
				}
			})
		}
		wg.Wait()
		once.Do(inject) // every writer failed before the crash point (reported)
		st := s.Stats()
		partitionFsyncs += st.PartitionFsyncs
		fsSyncs += st.FilesystemSyncs
		if t.Failed() {
			return
		}
		if mode >= 3 {
			// The process notices and reopens in-process (half the time after a power cut):
			// nothing it serves from now on may be lost by a later crash.
			for _, l := range logs {
				l.Close()
			}
			s.Close()
			fs.FailSyncs(0, nil)
			fs.SetWriteLimit(-1)
			if r.IntN(2) == 0 {
				fs.Crash()
			}
		}
	}
	if storeOpts.SyncFSMinLogs == 1 && partitionFsyncs != 0 {
		t.Fatalf("%d partition fsyncs by checkpoints that were to sync the filesystem", partitionFsyncs)
	}
	t.Logf("checkpoints: %d partition fsyncs, %d filesystem syncs", partitionFsyncs, fsSyncs)
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
