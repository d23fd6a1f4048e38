package bufpool

import "testing"

func TestClasses(t *testing.T) {
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
}

// TestReuse checks that a buffer put back comes out again for a request of its class and never
// for another class. sync.Pool may drop any value it is given (under the race detector it drops
// a quarter of them on purpose, and a GC empties it), so the test counts reuse over many
// Put/Get pairs instead of following one buffer.
func TestReuse(t *testing.T) {
	p := New(16, 3, 512)
	const rounds = 200
	reused := 0
	bp := p.Get(100 << 10)
	for i := 0; i < rounds; i++ {
		(*bp)[0] = 42
		p.Put(bp)
		// Another class must not hand out the marked 128 KiB buffer.
		if other := p.Get(200 << 10); cap(*other) != 256<<10+512 {
			t.Fatalf("Get(200 KiB) returned cap %d", cap(*other))
		} else {
			p.Put(other)
		}
		bp = p.Get(70 << 10)
		if cap(*bp) != 128<<10+512 {
			t.Fatalf("Get(70 KiB) returned cap %d", cap(*bp))
		}
		if (*bp)[0] == 42 {
			reused++
		}
	}
	// Without drops every round reuses; with the race detector's 1-in-4 drops about 3/4 do.
	// Half is far below either, and far above what a pool that never reuses would give (0).
	if reused < rounds/2 {
		t.Fatalf("a returned buffer was reused in %d of %d rounds", reused, rounds)
	}
}
