package wal_test

import (
	"fmt"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// BenchmarkMemberAppendCPU: Append (or AppendTagged) to a Store member on an in-memory file
// system with a Sync every 64 appends: the CPU cost of the append and commit path.
func BenchmarkMemberAppendCPU(b *testing.B) {
	for _, c := range []struct {
		size   int
		tagged bool
	}{{100, false}, {1024, false}, {16 << 10, false}, {1024, true}} {
		size := c.size
		name := fmt.Sprint("size=", size)
		if c.tagged {
			name += "/tagged"
		}
		b.Run(name, func(b *testing.B) {
			fs := waltest.NewCrashFS()
			s, err := wal.OpenStore("/d", wal.StoreOptions{FS: fs, CheckpointInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			l, err := s.OpenLog("/d/t/0", wal.Options{SegmentBytes: 64 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			data := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				var err error
				if c.tagged {
					_, err = l.AppendTagged(data, 1, 0, uint64(i+1))
				} else {
					_, err = l.Append(data, 1, 0)
				}
				if err != nil {
					b.Fatal(err)
				}
				if i++; i%64 == 0 {
					if err := l.Sync(l.NextOffset()); err != nil {
						b.Fatal(err)
					}
				}
				if i%20000 == 0 {
					if err := s.Checkpoint(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkReadCPU: sequential 64 KiB fetches from a 16 MiB log in memory.
func BenchmarkReadCPU(b *testing.B) {
	fs := waltest.NewCrashFS()
	l, err := wal.Open("/r", wal.Options{FS: fs, SegmentBytes: 4 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	batch := make([]byte, 1024)
	for range 16 << 10 {
		if _, err := l.Append(batch, 16, 0); err != nil {
			b.Fatal(err)
		}
	}
	off := int64(0)
	b.SetBytes(64 << 10)
	b.ReportAllocs()
	for b.Loop() {
		bs, err := l.Read(off, 64<<10)
		if err != nil {
			b.Fatal(err)
		}
		off = bs[len(bs)-1].LastOffset + 1
		if off >= l.NextOffset() {
			off = 0
		}
	}
}
