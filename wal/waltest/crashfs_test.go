package waltest_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"

	"github.com/meshkafka/meshkafka/wal/waltest"
)

// durableFile returns a CrashFS holding the file /d/a with data, synced, in the synced
// directory /d.
func durableFile(t *testing.T, data []byte) *waltest.CrashFS {
	t.Helper()
	c := waltest.NewCrashFS()
	c.MkdirAll("/d", 0o755)
	write(t, c, "/d/a", data, true)
	c.SyncDir("/d")
	return c
}

func write(t *testing.T, c *waltest.CrashFS, name string, data []byte, sync bool) {
	t.Helper()
	f, err := c.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	size, _ := f.Size()
	if _, err := f.WriteAt(data, size); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
}

func TestCrashDropsUnsynced(t *testing.T) {
	c := waltest.NewCrashFS()
	c.MkdirAll("/d", 0o755)
	write(t, c, "/d/a", []byte("synced"), true)
	write(t, c, "/d/b", []byte("never synced dir"), true)
	if err := c.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	write(t, c, "/d/a", []byte("+unsynced"), false)
	write(t, c, "/d/c", []byte("file synced, dir not"), true)
	if err := c.Remove("/d/b"); err != nil {
		t.Fatal(err)
	}
	f, _ := c.OpenFile("/d/a", os.O_RDONLY, 0)
	c.Crash()
	if got, _ := c.ReadFile("/d/a"); string(got) != "synced" {
		t.Fatalf("a = %q, want the synced bytes only", got)
	}
	if _, err := c.ReadFile("/d/c"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("c survived without a directory sync: %v", err)
	}
	if got, _ := c.ReadFile("/d/b"); string(got) != "never synced dir" {
		t.Fatalf("removal of b survived without a directory sync: %q", got)
	}
	if _, err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, waltest.ErrCrashed) {
		t.Fatalf("old handle: %v", err)
	}
}

func TestCrashTearKeepsOnlyUnsyncedPrefix(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		synced := bytes.Repeat([]byte{1}, 100)
		c := durableFile(t, synced)
		tail := bytes.Repeat([]byte{2}, 500)
		write(t, c, "/d/a", tail, false)
		c.CrashTear(r)
		got, _ := c.ReadFile("/d/a")
		if len(got) < 100 || len(got) > 600 || !bytes.Equal(got[:100], synced) {
			t.Fatalf("torn file %d bytes, synced prefix intact: %v", len(got), bytes.Equal(got[:min(100, len(got))], synced))
		}
		// What survives beyond the synced part is a prefix of the write, except for up to 64
		// bytes of garbage at its very end.
		kept := got[100:]
		good := 0
		for good < len(kept) && kept[good] == 2 {
			good++
		}
		if len(kept)-good > 64 {
			t.Fatalf("%d garbage bytes", len(kept)-good)
		}
	}
}

func TestFlipBitAndReadAt(t *testing.T) {
	c := durableFile(t, []byte{0, 0, 0})
	if err := c.FlipBit("/d/a", 9); err != nil {
		t.Fatal(err)
	}
	c.Crash() // the flip is on the medium: it survives
	got, _ := c.ReadFile("/d/a")
	if !bytes.Equal(got, []byte{0, 2, 0}) {
		t.Fatalf("got %v", got)
	}
	if err := c.FlipBit("/d/a", 24); err == nil {
		t.Fatal("flip beyond the end accepted")
	}
	f, _ := c.OpenFile("/d/a", os.O_RDONLY, 0)
	defer f.Close()
	b := make([]byte, 5)
	if n, err := f.ReadAt(b, 1); n != 2 || err != io.EOF {
		t.Fatalf("short ReadAt = %d, %v", n, err)
	}
	if _, err := f.WriteAt([]byte{1}, 0); err == nil {
		t.Fatal("write through a read-only handle")
	}
	if st := c.Stats(); st.BytesRead != 2 || st.Syncs != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFailSyncsLinuxSemantics(t *testing.T) {
	c := durableFile(t, []byte("durable|"))
	f, _ := c.OpenFile("/d/a", os.O_RDWR, 0)
	if _, err := f.WriteAt([]byte("lost|"), 8); err != nil {
		t.Fatal(err)
	}
	c.FailSyncs(1, errors.New("EIO"))
	if err := f.Sync(); err == nil {
		t.Fatal("Sync succeeded, want the injected failure")
	}
	// The page cache still shows the bytes, and a retried fsync "succeeds".
	if got, _ := c.ReadFile("/d/a"); string(got) != "durable|lost|" {
		t.Fatalf("after failed sync reads %q", got)
	}
	if _, err := f.WriteAt([]byte("later"), 13); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("retried Sync: %v", err)
	}
	c.Crash()
	// The failed writeback never reached the disk: zeros where it was, the later write kept.
	got, _ := c.ReadFile("/d/a")
	if string(got) != "durable|\x00\x00\x00\x00\x00later" {
		t.Fatalf("after crash %q", got)
	}
}

func TestWriteLimitShortWrite(t *testing.T) {
	c := waltest.NewCrashFS()
	c.MkdirAll("/d", 0o755)
	f, _ := c.OpenFile("/d/a", os.O_RDWR|os.O_CREATE, 0o644)
	c.SetWriteLimit(5)
	n, err := f.WriteAt([]byte("0123456789"), 0)
	if n != 5 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WriteAt = %d, %v; want a short write of 5 and ENOSPC", n, err)
	}
	if n, err := f.WriteAt([]byte("x"), 5); n != 0 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WriteAt on a full disk = %d, %v", n, err)
	}
	c.SetWriteLimit(-1)
	if _, err := f.WriteAt([]byte("x"), 5); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.ReadFile("/d/a"); string(got) != "01234x" {
		t.Fatalf("file %q", got)
	}
}

func TestCrashTearTearsOverwrites(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	mixed := false
	for range 50 {
		old := bytes.Repeat([]byte{1}, 2048)
		c := durableFile(t, old)
		f, _ := c.OpenFile("/d/a", os.O_RDWR, 0)
		f.WriteAt(bytes.Repeat([]byte{2}, 2048), 0)
		c.CrashTear(r)
		got, _ := c.ReadFile("/d/a")
		if len(got) != 2048 {
			t.Fatalf("torn overwrite changed the size to %d", len(got))
		}
		for b := 0; b < 2048; b += 512 {
			blk := got[b : b+512]
			if !bytes.Equal(blk, old[:512]) && !bytes.Equal(blk, bytes.Repeat([]byte{2}, 512)) {
				t.Fatalf("block %d is neither old nor new", b/512)
			}
			if blk[0] != got[0] {
				mixed = true
			}
		}
	}
	if !mixed {
		t.Fatal("no torn overwrite ever mixed old and new blocks")
	}
}

// TestCrashAnyKeepsSyncedBytes: whichever way CrashAny crashes, the synced bytes survive and
// nothing beyond what was written appears; over many seeds it picks all three ways (a plain
// Crash keeps none of the unsynced tail, the other two sometimes keep some).
func TestCrashAnyKeepsSyncedBytes(t *testing.T) {
	synced := bytes.Repeat([]byte("s"), 1024)
	tail := bytes.Repeat([]byte("t"), 4096)
	var lost, kept int
	for seed := range uint64(64) {
		c := waltest.NewCrashFS()
		c.MkdirAll("/d", 0o755)
		write(t, c, "/d/f", synced, true)
		if err := c.SyncDir("/d"); err != nil {
			t.Fatal(err)
		}
		write(t, c, "/d/f", tail, false)
		waltest.CrashAny(c, rand.New(rand.NewPCG(seed, 1)))
		f, err := c.OpenFile("/d/f", os.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		size, _ := f.Size()
		got := make([]byte, size)
		if _, err := f.ReadAt(got, 0); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		f.Close()
		if len(got) < len(synced) || !bytes.Equal(got[:len(synced)], synced) || len(got) > len(synced)+len(tail) {
			t.Fatalf("seed %d: %d bytes after the crash, synced prefix intact %v", seed, len(got), bytes.HasPrefix(got, synced))
		}
		if len(got) == len(synced) {
			lost++
		} else {
			kept++
		}
	}
	if lost == 0 || kept == 0 {
		t.Fatalf("over 64 seeds: %d crashes lost the whole tail, %d kept some; want both", lost, kept)
	}
}
