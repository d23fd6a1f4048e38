package clock

import (
	"sort"
	"sync"
	"time"
)

// Fake is a Clock that moves only when told to (Advance, Set). Its timers and tickers send on
// buffered channels of capacity 1, like package time's, and never block Advance: a tick the
// reader has not taken yet is not queued twice. Safe for concurrent use.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers map[*fakeTimer]struct{} // armed timers and tickers
}

// NewFake returns a fake clock reading start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, timers: map[*fakeTimer]struct{}{}}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock forward by d, firing on the way, in time order, every timer and
// ticker that comes due (a ticker once per period passed, each tick dropped if the previous
// one is still unread). A negative d is treated as zero.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	end := f.now.Add(max(d, 0))
	for {
		next := f.nextDueLocked(end)
		if next == nil {
			break
		}
		f.now = next.at
		select {
		case next.ch <- next.at:
		default:
		}
		if next.period > 0 {
			f.seq++
			next.at, next.seq = next.at.Add(next.period), f.seq
		} else {
			delete(f.timers, next)
		}
	}
	f.now = end
}

// Waiting is the number of armed timers and tickers: a test can wait for a component to have
// set its timer before advancing past it.
func (f *Fake) Waiting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// nextDueLocked is the armed timer due first at or before end (ties: armed first), or nil.
func (f *Fake) nextDueLocked(end time.Time) *fakeTimer {
	due := make([]*fakeTimer, 0, len(f.timers))
	for t := range f.timers {
		if !t.at.After(end) {
			due = append(due, t)
		}
	}
	if len(due) == 0 {
		return nil
	}
	sort.Slice(due, func(i, j int) bool {
		if !due[i].at.Equal(due[j].at) {
			return due[i].at.Before(due[j].at)
		}
		return due[i].seq < due[j].seq
	})
	return due[0]
}

// NewTimer implements Clock. A timer with d <= 0 fires at once, as with package time.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// NewTicker implements Clock. It panics if d <= 0, as time.NewTicker does.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	t := &fakeTimer{f: f, ch: make(chan time.Time, 1), period: d}
	t.Reset(d)
	return fakeTicker{t}
}

type fakeTimer struct {
	f      *Fake
	ch     chan time.Time
	period time.Duration // > 0 for a ticker
	// Guarded by f.mu.
	at  time.Time
	seq uint64
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	_, armed := t.f.timers[t]
	delete(t.f.timers, t)
	t.drain()
	return armed
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	_, armed := t.f.timers[t]
	if t.period > 0 {
		t.period = d
	}
	delete(t.f.timers, t)
	t.drain()
	if d <= 0 && t.period == 0 {
		t.at = t.f.now
		t.ch <- t.at // due now; the channel was just drained
		return armed
	}
	t.f.seq++
	t.at, t.seq = t.f.now.Add(d), t.f.seq
	t.f.timers[t] = struct{}{}
	return armed
}

// drain drops an unread tick, as Stop and Reset of package time do since Go 1.23: no stale
// value is received after either returns.
func (t *fakeTimer) drain() {
	select {
	case <-t.ch:
	default:
	}
}

type fakeTicker struct{ t *fakeTimer }

func (k fakeTicker) C() <-chan time.Time { return k.t.ch }
func (k fakeTicker) Stop()               { k.t.Stop() }
func (k fakeTicker) Reset(d time.Duration) {
	if d <= 0 {
		panic("clock: non-positive interval for Ticker.Reset")
	}
	k.t.Reset(d)
}
