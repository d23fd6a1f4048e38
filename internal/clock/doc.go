// Package clock is the time source injected into every component whose behaviour depends on
// time (timers, tickers, expiry, "how long ago"): tests drive it by hand instead of sleeping.
//
// A component takes a Clock in its Config or Options (field Clock); nil means Real(), the wall
// clock. Use Or to apply that rule:
//
//	c := clock.Or(cfg.Clock)
//	t := c.NewTimer(d)
//	defer t.Stop()
//	select { case <-t.C(): … }
//
// Fake is a manual clock for tests: time stands still until Advance, which fires every timer and
// ticker due on the way, in time order. Tests that would rather run a whole component in
// virtual time can keep Real() and use testing/synctest instead; both are fine.
//
// Deadlines on operating-system sockets (net.Conn.SetDeadline) are measured by the kernel's
// clock, so they stay on time.Now: a fake clock cannot move them.
//
// The package depends on the standard library only, so that every package may import it.
package clock
