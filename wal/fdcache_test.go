package wal

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// TestFDCacheUnderContention: with every other file pinned by an operation in flight, using
// an evicted file reopens it and never hands out a closed one; the cap holds once the
// operations end.
func TestFDCacheUnderContention(t *testing.T) {
	dir := t.TempDir()
	c := newCachedFS(OSFS(), 2)
	var files []File
	for i := range 6 {
		f, err := c.OpenFile(fmt.Sprintf("%s/f%d", dir, i), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte{byte(i)}, 0); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	// Pin two files, as two fsyncs in flight would.
	a, _ := files[0].(*lazyFile).acquire()
	b, _ := files[1].(*lazyFile).acquire()
	if a == nil || b == nil {
		t.Fatal("acquire returned no file")
	}
	var wg sync.WaitGroup
	for i := 2; i < 6; i++ {
		wg.Go(func() {
			for range 100 {
				var p [1]byte
				if _, err := files[i].ReadAt(p[:], 0); err != nil || p[0] != byte(i) {
					t.Errorf("file %d: read %d, %v", i, p[0], err)
					return
				}
			}
		})
	}
	wg.Wait()
	files[0].(*lazyFile).release()
	files[1].(*lazyFile).release()
	c.c.mu.Lock()
	open := c.c.open
	c.c.mu.Unlock()
	if open > 2 {
		t.Fatalf("%d files open after the operations ended, cap 2", open)
	}
	for _, f := range files {
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
