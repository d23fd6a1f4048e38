package bufpool

import "testing"

func TestClassesAndReuse(t *testing.T) {
	p := New(16, 3, 512) // 64 KiB, 128 KiB, 256 KiB, each + 512
	for _, c := range []struct{ n, cap int }{
		{0, 64<<10 + 512}, {1, 64<<10 + 512}, {64<<10 + 512, 64<<10 + 512}, {64<<10 + 513, 128<<10 + 512},
		{256 << 10, 256<<10 + 512}, {256<<10 + 512, 256<<10 + 512},
	} {
		bp := p.Get(c.n)
		if bp == nil || cap(*bp) != c.cap || len(*bp) < c.n {
			t.Fatalf("Get(%d): %v, want cap %d", c.n, bp, c.cap)
		}
		p.Put(bp)
	}
	if bp := p.Get(p.Max() + 1); bp != nil || p.Max() != 256<<10+512 {
		t.Fatalf("Get above Max (%d) returned a buffer", p.Max())
	}
	// A buffer put back comes out again for a request of its class (sync.Pool may drop it
	// under GC, so look for it a few times).
	bp := p.Get(100 << 10)
	(*bp)[0] = 42
	for i := 0; i < 10; i++ {
		p.Put(bp)
		bp = p.Get(70 << 10)
		if (*bp)[0] == 42 {
			return
		}
	}
	t.Fatal("a returned buffer was never reused")
}
