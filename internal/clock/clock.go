package clock

import "time"

// Clock tells the time and makes timers and tickers.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that sends the time on its channel once d has passed.
	NewTimer(d time.Duration) Timer
	// NewTicker returns a ticker that sends the time every d (d > 0). Like time.Ticker, a slow
	// reader misses ticks rather than queueing them.
	NewTicker(d time.Duration) Ticker
}

// Timer is the part of *time.Timer a component uses.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether that stopped it.
	Stop() bool
	// Reset makes the timer fire d from now; it reports whether the timer was active.
	Reset(d time.Duration) bool
}

// Ticker is the part of *time.Ticker a component uses.
type Ticker interface {
	C() <-chan time.Time
	Stop()
	Reset(d time.Duration)
}

// Real returns the wall clock (package time).
func Real() Clock { return realClock{} }

// Or returns c, or Real() when c is nil: the rule for a Clock field left unset.
func Or(c Clock) Clock {
	if c == nil {
		return realClock{}
	}
	return c
}

// Since is c.Now().Sub(t).
func Since(c Clock, t time.Time) time.Duration { return c.Now().Sub(t) }

// Until is t.Sub(c.Now()).
func Until(c Clock, t time.Time) time.Duration { return t.Sub(c.Now()) }

type realClock struct{}

func (realClock) Now() time.Time                   { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer   { return realTimer{time.NewTimer(d)} }
func (realClock) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time   { return r.t.C }
func (r realTicker) Stop()                 { r.t.Stop() }
func (r realTicker) Reset(d time.Duration) { r.t.Reset(d) }
