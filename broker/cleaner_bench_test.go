package broker

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkCleaner is the log cleaner's throughput on the real disk, in MB/s of log cleaned
// (the size of the partition before the pass, over the pass's time), beside its peer in the
// same run: a plain copy of the same segment files (read, write to a new file, fsync, rename
// over, directory fsync: the I/O a rewrite cannot avoid), so the ratio ours/copy is what the
// cleaner's key map, filtering and crash-safe swap cost over that floor. There is no Kafka
// cleaner to run beside it (kfake does not compact).
//
//	BenchmarkCleaner/records=200k/keys=10k/value=100B/impl=ours|copy   MB/s
//
// Each iteration writes 200,000 keyed records of 100-byte values over 10,000 keys (one in 50
// a tombstone) in batches of 100 into a compacted partition with 1 MiB segments, then times
// one Compact (impl=ours) or the copy of the sealed segments (impl=copy).
func BenchmarkCleaner(b *testing.B) {
	const records, keys, batch = 200_000, 10_000, 100
	value := strings.Repeat("v", 100)
	for _, impl := range []string{"ours", "copy"} {
		b.Run(fmt.Sprintf("records=200k/keys=10k/value=100B/impl=%s", impl), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				e := newEnv(b, func(c *Config) {
					c.Dir, c.FS = b.TempDir(), nil
					c.CleanerBackoff, c.TxnCheckInterval = -1, -1
				})
				e.create("c", 1, map[string]string{"cleanup.policy": "compact", "segment.bytes": "1048576", "min.cleanable.dirty.ratio": "0"})
				r := rand.New(rand.NewPCG(1, 1))
				for done := 0; done < records; done += batch {
					recs := make([]krec, batch)
					for i := range recs {
						recs[i].key = fmt.Sprintf("key-%d", r.IntN(keys))
						if r.IntN(50) != 0 {
							recs[i].value = &value
						}
					}
					e.mustProduce(-1, "c", 0, keyedBatch(1000, recs...))
				}
				l := e.partLog("c", 0)
				size := l.Size()
				b.SetBytes(size)
				b.StartTimer()
				switch impl {
				case "ours":
					st, err := e.b.Compact(context.Background())
					if err != nil {
						b.Fatal(err)
					}
					if st.Swapped == 0 {
						b.Fatalf("nothing cleaned: %+v", st)
					}
				case "copy":
					segs := l.Segments()
					if err := copySegments(e.b.lookup("c", 0).dir(), segs[len(segs)-1].Base); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				e.b.Close()
				b.StartTimer()
			}
		})
	}
}

// copySegments rewrites every segment file below the active segment (base active) of the log
// in dir as the cleaner's swap would, without looking inside: each is read, written to a new
// file, fsynced and renamed over the old one; then the directory is fsynced.
func copySegments(dir string, active int64) error {
	names, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	activeName := fmt.Sprintf("%020d.log", active)
	for _, n := range names {
		if !strings.HasSuffix(n.Name(), ".log") || n.Name() >= activeName {
			continue
		}
		src := filepath.Join(dir, n.Name())
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		out, err := os.Create(src + ".copy")
		if err == nil {
			_, err = io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, buf)
			if err == nil {
				err = out.Sync()
			}
			if cerr := out.Close(); err == nil {
				err = cerr
			}
		}
		in.Close()
		if err == nil {
			err = os.Rename(src+".copy", src)
		}
		if err != nil {
			return err
		}
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
