package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// Liveness of the brokers, for every op (controller ops in ctlDo, data ops in the split
// path).
//
// A call to a broker that died (SIGKILL, a cut link) gets no answer and no error: nothing
// closes the QUIC connection, and the call waits for the connection's idle timeout (5 s)
// before the gateway moves on. So every call runs watched (watched): once it has gone
// unanswered for probeAfter, its broker is asked a liveness probe, ClusterBrokers{Local},
// which the broker answers itself (no leader, no raft), and again every probeAfter while the
// call waits. Calls waiting on one broker share its probes (one in flight at a time), and a
// broker that answered anything within probeAfter is not probed. A broker that does not
// answer a probe within probeTimeout is marked down (markDown): every call waiting on it is
// abandoned (brokermesh.ErrUnavailable), its connection is closed (brokermesh.Caller.Reset,
// so a restarted broker is reached on a new connection at once, not after the idle timeout),
// and data ops stop being sent to it: a partition it led is routed to the leader the other
// brokers name (leader.go). A broker is up again as soon as it answers anything.
//
// A live broker too slow to answer a probe within probeTimeout is treated as a dead one: a
// produce in flight there may then have been stored too, as after any lost answer (the
// client retries; an idempotent retry is deduplicated).

// Liveness probes (watched).
const (
	probeAfter   = 300 * time.Millisecond // a call unanswered this long has its broker probed
	probeTimeout = time.Second            // a probe unanswered this long: the broker is down
)

// liveness is one broker's state as the gateway sees it.
type liveness struct {
	mu      sync.Mutex
	heardAt time.Time   // last answer of any kind; guarded by mu
	downAt  time.Time   // zero while up; guarded by mu
	probe   *probeTrial // the probe in flight, nil if none; guarded by mu
}

// probeTrial is one probe that several watchers wait for.
type probeTrial struct {
	done chan struct{}
	err  error // set before done closes: nil (answered), errInconclusive, or the failure
}

// errInconclusive is a probe that ended because its caller's call ended: no verdict.
var errInconclusive = errors.New("probe abandoned")

// heard records an answer from b: it is up.
func (c *Cluster) heard(b *Broker) {
	b.live.mu.Lock()
	wasDown := !b.live.downAt.IsZero()
	b.live.heardAt, b.live.downAt = c.now(), time.Time{}
	b.live.mu.Unlock()
	if wasDown {
		c.log.Info("broker answers again", "broker", b.caller.Remote())
	}
}

// isDown reports whether b failed a probe and has not answered anything since.
func (b *Broker) isDown() bool {
	b.live.mu.Lock()
	defer b.live.mu.Unlock()
	return !b.live.downAt.IsZero()
}

// markDown records that b failed a probe: its connection is closed, failing every call on
// it, and data ops go elsewhere until it answers again.
func (c *Cluster) markDown(b *Broker, err error) {
	b.live.mu.Lock()
	first := b.live.downAt.IsZero()
	if first {
		b.live.downAt = c.now()
	}
	b.live.mu.Unlock()
	if !first {
		return
	}
	c.log.Info("a broker did not answer a liveness probe: calls to it abandoned, its connection closed", "broker", b.caller.Remote(), "err", err)
	if b.caller != nil {
		b.caller.Reset("no answer to a liveness probe")
	}
	c.mu.Lock()
	if c.preferred == b {
		c.preferred = nil
	}
	c.failedAt[b] = c.now()
	c.mu.Unlock()
}

// probeOnce asks b the liveness probe, sharing a probe in flight; it returns nil when b
// answered (now or within probeAfter), errInconclusive when ctx ended first, else the
// probe's failure.
func (c *Cluster) probeOnce(ctx context.Context, b *Broker) error {
	b.live.mu.Lock()
	if !b.live.heardAt.IsZero() && c.now().Sub(b.live.heardAt) < c.probeAfter && b.live.downAt.IsZero() {
		b.live.mu.Unlock()
		return nil
	}
	if p := b.live.probe; p != nil {
		b.live.mu.Unlock()
		select {
		case <-p.done:
			if errors.Is(p.err, errInconclusive) && ctx.Err() == nil {
				return c.probeOnce(ctx, b) // its owner left: ask again
			}
			return p.err
		case <-ctx.Done():
			return errInconclusive
		}
	}
	p := &probeTrial{done: make(chan struct{})}
	b.live.probe = p
	b.live.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, c.probeTimeout)
	_, err := b.ClusterBrokers(pctx, &brokerop.ClusterBrokersReq{Local: true})
	cancel()
	var ce *brokermesh.CallError
	switch {
	case err == nil || errors.As(err, &ce):
		err = nil // any answer, even an error status (a broker without the quorum ops), shows it alive
	case ctx.Err() != nil:
		err = errInconclusive
	}
	b.live.mu.Lock()
	b.live.probe = nil
	b.live.mu.Unlock()
	p.err = err
	close(p.done)
	if err == nil {
		c.heard(b)
	}
	return err
}

// watch probes b every probeAfter until ctx ends; it returns the failure of the first probe
// b did not answer (nil when ctx ended first). The first probe is sent at once: the caller
// starts watch once a call has waited probeAfter.
func (c *Cluster) watch(ctx context.Context, b *Broker) error {
	for {
		err := c.probeOnce(ctx, b)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, errInconclusive) {
			return err
		}
		t := time.NewTimer(c.probeAfter)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// watched runs fn on b, watching b (see the top of this file): a call still unanswered after
// probeAfter starts the probes, and a failed probe marks b down, cancels fn's context and
// makes watched fail with brokermesh.ErrUnavailable. A call that answers marks b up. The fast
// path costs one timer: no goroutine runs unless the call is slow.
func watched[T any](ctx context.Context, c *Cluster, b *Broker, fn func(context.Context) (T, error)) (T, error) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := c.watchCall(actx, b, cancel)
	r, err := fn(actx)
	dead := stop()
	if dead != nil && err != nil && ctx.Err() == nil {
		var zero T
		return zero, unavailable(b, c.probeTimeout, dead)
	}
	if err == nil {
		c.heard(b)
	}
	return r, err
}

// unavailable is the error of a call abandoned because its broker failed a probe.
func unavailable(b *Broker, timeout time.Duration, dead error) error {
	return fmt.Errorf("%w: %s: no answer to a liveness probe within %v (%w); the call was abandoned there",
		brokermesh.ErrUnavailable, b.caller.Remote(), timeout, dead)
}

// watchCall starts watching b for a call running under ctx: after probeAfter, probes (watch)
// on a goroutine of its own; a failed probe marks b down and calls abort. stop ends the
// watch, waits for its goroutine, and returns the probe failure (nil if none).
func (c *Cluster) watchCall(ctx context.Context, b *Broker, abort func()) (stop func() error) {
	wctx, wcancel := context.WithCancel(ctx)
	var dead error
	done := make(chan struct{})
	t := time.AfterFunc(c.probeAfter, func() {
		defer close(done)
		if dead = c.watch(wctx, b); dead != nil {
			c.markDown(b, dead)
			abort()
		}
	})
	return func() error {
		wcancel()
		if !t.Stop() {
			<-done
		}
		return dead
	}
}
