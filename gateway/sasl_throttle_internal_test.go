package gateway

import (
	"testing"
	"time"
)

// The throttle's state machine on explicit times: Burst failures lock a source out, one is
// forgiven per Refill, refused attempts cost nothing, sources are independent, and the table
// stays within MaxSources (refilled entries dropped first; untracked beyond, reported once).
func TestAuthThrottle(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	th := newAuthThrottle(BruteForceConfig{Burst: 3, Refill: 10 * time.Second, MaxSources: 2})
	for i := range 3 {
		if ok, _ := th.allow("192.0.2.1", t0); !ok {
			t.Fatalf("attempt %d refused before the burst was spent", i)
		}
		if locked, _ := th.failed("192.0.2.1", t0); locked != (i == 2) {
			t.Fatalf("failure %d: locked %v", i, locked)
		}
	}
	for range 100 {
		if ok, retry := th.allow("192.0.2.1", t0); ok || retry != 10*time.Second {
			t.Fatalf("locked-out source: allowed %v, retry %v", ok, retry)
		}
	}
	if ok, _ := th.allow("192.0.2.2", t0); !ok {
		t.Fatal("another source refused")
	}
	if ok, retry := th.allow("192.0.2.1", t0.Add(9*time.Second)); ok || retry != time.Second {
		t.Fatalf("at 9 s: %v %v", ok, retry)
	}
	if ok, _ := th.allow("192.0.2.1", t0.Add(10*time.Second)); !ok {
		t.Fatal("not let in after one refill (refused attempts must cost nothing)")
	}
	if locked, _ := th.failed("192.0.2.1", t0.Add(10*time.Second)); !locked {
		t.Fatal("one failure after one refill does not lock out again")
	}
	// After the whole budget refilled, three failures are allowed again.
	t1 := t0.Add(time.Minute)
	for i := range 3 {
		if ok, _ := th.allow("192.0.2.1", t1); !ok {
			t.Fatalf("after a full refill, attempt %d refused", i)
		}
		th.failed("192.0.2.1", t1)
	}
	if lockouts, refused := th.stats(); lockouts != 3 || refused != 101 {
		t.Fatalf("stats: %d lockouts, %d refused", lockouts, refused)
	}

	// MaxSources 2: a third failing source, with both entries in debt, is not tracked
	// (reported once); once an entry has refilled it is dropped and the new source tracked.
	th.failed("192.0.2.2", t1)
	if _, untracked := th.failed("192.0.2.3", t1); !untracked {
		t.Fatal("third source tracked beyond MaxSources")
	}
	if _, untracked := th.failed("192.0.2.4", t1); untracked {
		t.Fatal("the full table reported twice")
	}
	if len(th.tat) != 2 {
		t.Fatalf("%d entries, want 2", len(th.tat))
	}
	t2 := t1.Add(20 * time.Second) // 192.0.2.2 refilled; 192.0.2.1 (30 s of debt) has not
	if _, untracked := th.failed("192.0.2.3", t2); untracked {
		t.Fatal("a refilled entry was not dropped for a new source")
	}
	if _, ok := th.tat[sourceOf("192.0.2.1")]; !ok || len(th.tat) != 2 {
		t.Fatalf("entries %v", th.tat)
	}

	if newAuthThrottle(BruteForceConfig{Burst: -1}) != nil {
		t.Fatal("negative Burst does not turn throttling off")
	}
	var off *authThrottle
	if ok, _ := off.allow("x", t0); !ok {
		t.Fatal("nil throttle refused")
	}
}

func TestSourceOf(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
		{"::ffff:198.51.100.1", "198.51.100.1"},
		{"fe80::1%eth0", "fe80::2"},
		{"", "not an address"},
	} {
		if sourceOf(tc.a) != sourceOf(tc.b) {
			t.Errorf("%s and %s are different sources", tc.a, tc.b)
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"198.51.100.1", "198.51.100.2"},
		{"", "198.51.100.2"},
	} {
		if sourceOf(tc.a) == sourceOf(tc.b) {
			t.Errorf("%s and %s are one source", tc.a, tc.b)
		}
	}
}
