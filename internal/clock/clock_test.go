package clock

import (
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func recv(c <-chan time.Time) (time.Time, bool) {
	select {
	case v := <-c:
		return v, true
	default:
		return time.Time{}, false
	}
}

func TestFakeTimerFiresAtDeadline(t *testing.T) {
	f := NewFake(t0)
	tm := f.NewTimer(5 * time.Second)
	f.Advance(4 * time.Second)
	if _, ok := recv(tm.C()); ok {
		t.Fatal("fired early")
	}
	f.Advance(time.Second)
	v, ok := recv(tm.C())
	if !ok || !v.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("got %v %v, want fire at +5s", v, ok)
	}
	if f.Waiting() != 0 {
		t.Fatalf("fired timer still armed: %d", f.Waiting())
	}
	if tm.Stop() {
		t.Fatal("Stop of a fired timer reported it active")
	}
}

func TestFakeStopAndReset(t *testing.T) {
	f := NewFake(t0)
	tm := f.NewTimer(time.Second)
	if !tm.Stop() {
		t.Fatal("Stop of an armed timer reported inactive")
	}
	f.Advance(time.Hour)
	if _, ok := recv(tm.C()); ok {
		t.Fatal("stopped timer fired")
	}
	if tm.Reset(2 * time.Second) {
		t.Fatal("Reset of a stopped timer reported active")
	}
	f.Advance(time.Second)
	if _, ok := recv(tm.C()); ok {
		t.Fatal("reset timer fired early")
	}
	f.Advance(time.Second)
	if v, ok := recv(tm.C()); !ok || !v.Equal(t0.Add(time.Hour+2*time.Second)) {
		t.Fatalf("reset timer: %v %v", v, ok)
	}
	// A tick left unread is dropped by Reset, as with package time.
	tm.Reset(time.Second)
	f.Advance(time.Second)
	tm.Reset(time.Minute)
	if _, ok := recv(tm.C()); ok {
		t.Fatal("stale tick survived Reset")
	}
}

func TestFakeTickerDropsUnreadTicks(t *testing.T) {
	f := NewFake(t0)
	tk := f.NewTicker(time.Second)
	f.Advance(3500 * time.Millisecond) // ticks at 1,2,3 s; only the first fits the buffer
	v, ok := recv(tk.C())
	if !ok || !v.Equal(t0.Add(time.Second)) {
		t.Fatalf("first tick %v %v", v, ok)
	}
	if _, ok := recv(tk.C()); ok {
		t.Fatal("ticks queued beyond one")
	}
	f.Advance(500 * time.Millisecond)
	if v, ok := recv(tk.C()); !ok || !v.Equal(t0.Add(4*time.Second)) {
		t.Fatalf("tick at 4s: %v %v", v, ok)
	}
	tk.Reset(10 * time.Second)
	f.Advance(9 * time.Second)
	if _, ok := recv(tk.C()); ok {
		t.Fatal("reset ticker ticked early")
	}
	f.Advance(time.Second)
	if _, ok := recv(tk.C()); !ok {
		t.Fatal("reset ticker did not tick")
	}
	tk.Stop()
	f.Advance(time.Minute)
	if _, ok := recv(tk.C()); ok || f.Waiting() != 0 {
		t.Fatal("stopped ticker ticked or stayed armed")
	}
}

// TestFakeFiresInTimeOrder: during one Advance, timers fire in deadline order and Now reads
// each one's deadline as it fires (what a component reading Now after a tick sees).
func TestFakeFiresInTimeOrder(t *testing.T) {
	f := NewFake(t0)
	late, early := f.NewTimer(3*time.Second), f.NewTimer(time.Second)
	f.Advance(10 * time.Second)
	e, ok1 := recv(early.C())
	l, ok2 := recv(late.C())
	if !ok1 || !ok2 || !e.Equal(t0.Add(time.Second)) || !l.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("early %v %v late %v %v", e, ok1, l, ok2)
	}
	if !f.Now().Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("Now %v after Advance", f.Now())
	}
	if Since(f, t0) != 10*time.Second || Until(f, t0) != -10*time.Second {
		t.Fatal("Since/Until")
	}
}

func TestFakeConcurrentUse(t *testing.T) {
	f := NewFake(t0)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				tm := f.NewTimer(time.Millisecond)
				f.Advance(time.Millisecond)
				<-tm.C()
			}
		})
	}
	wg.Wait()
	if f.Waiting() != 0 {
		t.Fatalf("%d timers left armed", f.Waiting())
	}
}

func TestFakeZeroTimerFiresAtOnce(t *testing.T) {
	f := NewFake(t0)
	tm := f.NewTimer(0)
	if v, ok := recv(tm.C()); !ok || !v.Equal(t0) {
		t.Fatalf("zero timer: %v %v", v, ok)
	}
	if f.Waiting() != 0 {
		t.Fatal("fired zero timer left armed")
	}
	if tm.Reset(-time.Second) {
		t.Fatal("Reset of a fired timer reported active")
	}
	if _, ok := recv(tm.C()); !ok {
		t.Fatal("negative Reset did not fire at once")
	}
}

func TestRealAndOr(t *testing.T) {
	if Or(nil) == nil {
		t.Fatal("Or(nil) is nil")
	}
	f := NewFake(t0)
	if Or(f) != Clock(f) {
		t.Fatal("Or replaced a set clock")
	}
	r := Real()
	before := time.Now()
	if r.Now().Before(before) {
		t.Fatal("Real().Now() behind time.Now()")
	}
	tm := r.NewTimer(0)
	<-tm.C() // fires: a zero timer is due at once
	tk := r.NewTicker(time.Hour)
	tk.Stop()
	if tm.Stop() {
		t.Fatal("Stop after fire reported active")
	}
}
