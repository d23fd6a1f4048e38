package gateway

// Brute-force throttling of SASL authentication, per source: an IPv4 address or an IPv6 /64
// (one host's usual allocation). Every failed authentication from a source costs it one
// unit of a budget of Burst that refills one unit per Refill (a GCRA leaky bucket: one
// theoretical arrival time per source). A source whose budget is spent is locked out: its
// next exchanges fail at their first token, without any credential being looked up or
// checked, until a unit refills; refused attempts cost nothing more, so a source that stops
// failing is let in again after Refill. Failures are counted, not attempts: any number of
// clients of one source may authenticate at once, and a success costs nothing.
//
// An attacker therefore gets at most Burst + elapsed/Refill credential checks per source, plus
// the exchanges already past their first token when the lockout began (at most one per
// connection it holds open); each connection gets one attempt (a failure closes it), and each
// failure answer waits SASLConfig.FailedAuthDelay first (Kafka's
// connection.failed.authentication.delay.ms). Other sources are not affected: the
// throttle's state is one map entry per failing source, at most MaxSources entries (sources
// whose budget refilled are dropped first; when every tracked source is still in debt, new
// failing sources are not tracked, and a warning is logged once).
//
// authThrottle is the state machine; the clock is the caller's (SASLConfig.Clock).

import (
	"net/netip"
	"sync"
	"time"
)

// BruteForceConfig configures the throttling of failed SASL authentications per source.
type BruteForceConfig struct {
	// Burst is how many failures a source may have in a row before it is locked out
	// (default 20; negative: no throttling).
	Burst int
	// Refill is the time in which one failure is forgiven (default 3 s).
	Refill time.Duration
	// MaxSources bounds the failing sources tracked at once (default 65536).
	MaxSources int
}

type authThrottle struct {
	burst      time.Duration // Burst × Refill
	refill     time.Duration
	maxSources int

	mu       sync.Mutex
	tat      map[netip.Prefix]time.Time // guarded by mu: theoretical arrival time per source
	full     bool                       // guarded by mu: the table was full (warned once)
	lockouts int                        // guarded by mu: lockouts begun (tests, logs)
	refused  int                        // guarded by mu: attempts refused while locked out
}

// newAuthThrottle returns nil when throttling is off.
func newAuthThrottle(cfg BruteForceConfig) *authThrottle {
	if cfg.Burst < 0 {
		return nil
	}
	if cfg.Burst == 0 {
		cfg.Burst = 20
	}
	if cfg.Refill <= 0 {
		cfg.Refill = 3 * time.Second
	}
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = 1 << 16
	}
	return &authThrottle{burst: time.Duration(cfg.Burst) * cfg.Refill, refill: cfg.Refill, maxSources: cfg.MaxSources,
		tat: map[netip.Prefix]time.Time{}}
}

// sourceOf is the throttling key of a peer address ("" or unparseable: one shared key).
func sourceOf(host string) netip.Prefix {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// allow reports whether host may start an authentication at now; when it may not, retry is
// how long until it may.
func (t *authThrottle) allow(host string, now time.Time) (ok bool, retry time.Duration) {
	if t == nil {
		return true, 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tat, found := t.tat[sourceOf(host)]
	// Locked out while the debt exceeds Burst-1 units.
	if !found || !tat.After(now.Add(t.burst-t.refill)) {
		return true, 0
	}
	t.refused++
	return false, tat.Sub(now.Add(t.burst - t.refill))
}

// failed records a failed authentication of host at now; lockedOut reports whether this
// failure began a lockout (to log it once).
func (t *authThrottle) failed(host string, now time.Time) (lockedOut bool, untracked bool) {
	if t == nil {
		return false, false
	}
	src := sourceOf(host)
	t.mu.Lock()
	defer t.mu.Unlock()
	tat, found := t.tat[src]
	if !found && len(t.tat) >= t.maxSources {
		for k, v := range t.tat {
			if !v.After(now) {
				delete(t.tat, k)
			}
		}
		if len(t.tat) >= t.maxSources {
			first := !t.full
			t.full = true
			return false, first
		}
	}
	t.full = false
	was := found && tat.After(now.Add(t.burst-t.refill))
	if tat.Before(now) {
		tat = now
	}
	tat = tat.Add(t.refill)
	t.tat[src] = tat
	if !was && tat.After(now.Add(t.burst-t.refill)) {
		t.lockouts++
		return true, false
	}
	return false, false
}

// stats returns the lockouts begun and the attempts refused so far.
func (t *authThrottle) stats() (lockouts, refused int) {
	if t == nil {
		return 0, 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lockouts, t.refused
}
