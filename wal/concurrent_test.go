package wal_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// TestConcurrent runs appenders with Sync, tailing readers, retention and time lookups at once
// on small segments (rolls race with group commits). Every entry carries its own base offset
// (written by Stamp) and a checksum-like fill, so a reader can tell a wrong or torn entry.
func TestConcurrent(t *testing.T) {
	cfs := waltest.NewCrashFS()
	cfs.SetSyncDelay(200 * time.Microsecond)
	opts := wal.Options{FS: cfs, SegmentBytes: 8 << 10, IndexIntervalBytes: 512,
		Stamp: func(b []byte, base int64) { binary.BigEndian.PutUint64(b, uint64(base)) }}
	l := mustOpen(t, cfs, "/p", opts)
	defer l.Close()

	const writers, each = 8, 150
	var wg sync.WaitGroup
	var done atomic.Bool
	errc := make(chan error, 64)
	report := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	checkEntry := func(b wal.Batch) error {
		if len(b.Data) < 9 || int64(binary.BigEndian.Uint64(b.Data)) != b.BaseOffset {
			return fmt.Errorf("entry at %d carries the wrong base offset", b.BaseOffset)
		}
		fillByte := b.Data[8]
		for _, x := range b.Data[9:] {
			if x != fillByte {
				return fmt.Errorf("entry at %d has mixed content", b.BaseOffset)
			}
		}
		if b.MaxTimestamp != int64(fillByte) {
			return fmt.Errorf("entry at %d: timestamp %d, fill %d", b.BaseOffset, b.MaxTimestamp, fillByte)
		}
		return nil
	}
	var writersWG sync.WaitGroup
	for w := range writers {
		writersWG.Go(func() {
			for i := range each {
				fill := byte(w*each + i)
				data := make([]byte, 9+(w*37+i*11)%400)
				for j := 8; j < len(data); j++ {
					data[j] = fill
				}
				off, err := l.Append(data, int32(1+i%3), int64(fill))
				if err == nil && i%2 == 0 {
					err = l.Sync(off + 1)
				}
				if err != nil {
					report(err)
					return
				}
			}
		})
	}
	for range 3 { // tailing readers
		wg.Go(func() {
			off := int64(0)
			for !done.Load() || off < l.NextOffset() {
				bs, err := l.Read(off, 2000)
				if errors.Is(err, wal.ErrOffsetOutOfRange) {
					off = l.StartOffset() // retention overtook us
					continue
				}
				if err != nil {
					report(err)
					return
				}
				for _, b := range bs {
					if b.BaseOffset != off {
						report(fmt.Errorf("read gap: got %d, want %d", b.BaseOffset, off))
						return
					}
					if err := checkEntry(b); err != nil {
						report(err)
						return
					}
					off = b.LastOffset + 1
				}
			}
		})
	}
	wg.Go(func() { // retention and time lookups
		for !done.Load() {
			if _, err := l.Retain(-1, 64<<10); err != nil {
				report(err)
				return
			}
			if _, _, err := l.OffsetForTimestamp(100); err != nil && !errors.Is(err, wal.ErrOffsetOutOfRange) {
				report(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	writersWG.Wait()
	done.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if err := l.Sync(l.NextOffset()); err != nil {
		t.Fatal(err)
	}
	next, start := l.NextOffset(), l.StartOffset()
	cfs.Crash()
	l2 := mustOpen(t, cfs, "/p", opts)
	defer l2.Close()
	if l2.NextOffset() != next || l2.StartOffset() != start {
		t.Fatalf("after crash [%d,%d), want [%d,%d)", l2.StartOffset(), l2.NextOffset(), start, next)
	}
	for _, b := range readAll(t, l2) {
		if err := checkEntry(b); err != nil {
			t.Fatal(err)
		}
	}
}
