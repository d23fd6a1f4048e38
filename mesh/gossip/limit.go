package gossip

// Inbound limits (issue #17 item 4): the control topic is open to any node, and every frame a
// peer sends may make this node hold state (a message's payload for MessageCacheRetention, its
// id for MessageIDRetention) and relay it. Each peer gets a token bucket of frames and bytes
// per second, and all peers together another; a frame over a budget is dropped unread (before
// it is decoded or reaches the protocol), counted, and logged at most once a minute. Plumtree
// recovers a dropped broadcast from another neighbor's IHave, so honest peers far below their
// budget lose nothing.
//
// Bound: what a flood can make a node hold is what the total budget lets through, at most
// TotalBytes × MessageCacheRetention of payloads plus TotalFrames × MessageIDRetention ids of
// about 150 bytes each: with the defaults (512 KiB/s, 1000 frames/s, 30 s, 90 s) 15 MiB + 13 MiB,
// under 32 MiB whatever the number of flooding keys. Peer buckets themselves are bounded
// (maxLimitedPeers; idle ones are dropped first).

import (
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/gossip/proto"
)

// InLimits are the inbound budgets; each is a sustained rate, with a burst of two seconds'
// worth. Zero fields take the defaults named; a negative field means no limit.
type InLimits struct {
	PeerFrames  float64 // frames per second from one peer. Zero: 100
	PeerBytes   float64 // bytes per second from one peer. Zero: 64 KiB
	TotalFrames float64 // frames per second from all peers. Zero: 1000
	TotalBytes  float64 // bytes per second from all peers. Zero: 512 KiB
}

func (l InLimits) withDefaults() InLimits {
	def := func(v, d float64) float64 {
		if v == 0 {
			return d
		}
		return v
	}
	return InLimits{PeerFrames: def(l.PeerFrames, 100), PeerBytes: def(l.PeerBytes, 64<<10),
		TotalFrames: def(l.TotalFrames, 1000), TotalBytes: def(l.TotalBytes, 512<<10)}
}

const (
	limitBurst      = 2 * time.Second
	maxLimitedPeers = 4096
)

// bucket is a token bucket refilled at rate per second up to rate × limitBurst; rate < 0 is
// unlimited.
type bucket struct {
	rate, tokens float64
	at           time.Time
}

func newBucket(rate float64, now time.Time) bucket {
	return bucket{rate: rate, tokens: rate * limitBurst.Seconds(), at: now}
}

func (b *bucket) refill(now time.Time) {
	if b.rate < 0 {
		return
	}
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(b.tokens+b.rate*d.Seconds(), b.rate*limitBurst.Seconds())
		b.at = now
	}
}

func (b *bucket) has(n float64) bool { return b.rate < 0 || b.tokens >= n }

func (b *bucket) take(n float64) {
	if b.rate >= 0 {
		b.tokens -= n
	}
}

type peerBuckets struct{ frames, bytes bucket }

// inLimiter applies InLimits. Safe for concurrent use (every connection's reader asks it).
type inLimiter struct {
	lim InLimits
	clk clock.Clock

	mu          sync.Mutex
	peers       map[proto.Key]*peerBuckets // guarded by mu
	total       peerBuckets                // guarded by mu
	dropped     uint64                     // guarded by mu: frames dropped so far
	lastLogged  time.Time                  // guarded by mu
	droppedSeen uint64                     // guarded by mu: dropped at the last log line
}

func newInLimiter(l InLimits, clk clock.Clock) *inLimiter {
	l = l.withDefaults()
	now := clk.Now()
	return &inLimiter{lim: l, clk: clk, peers: map[proto.Key]*peerBuckets{},
		total: peerBuckets{frames: newBucket(l.TotalFrames, now), bytes: newBucket(l.TotalBytes, now)}}
}

// allow reports whether a frame of n bytes from peer may be read, taking its tokens; when it
// may not, it counts the drop and returns, at most once a minute, the number of drops to log.
func (l *inLimiter) allow(peer proto.Key, n int) (ok bool, logDrops uint64) {
	now := l.clk.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.peers[peer]
	if p == nil {
		if len(l.peers) >= maxLimitedPeers {
			l.pruneLocked(now)
		}
		p = &peerBuckets{frames: newBucket(l.lim.PeerFrames, now), bytes: newBucket(l.lim.PeerBytes, now)}
		l.peers[peer] = p
	}
	for _, b := range []*bucket{&p.frames, &p.bytes, &l.total.frames, &l.total.bytes} {
		b.refill(now)
	}
	size := float64(n)
	if p.frames.has(1) && p.bytes.has(size) && l.total.frames.has(1) && l.total.bytes.has(size) {
		p.frames.take(1)
		p.bytes.take(size)
		l.total.frames.take(1)
		l.total.bytes.take(size)
		return true, 0
	}
	l.dropped++
	if l.lastLogged.IsZero() || now.Sub(l.lastLogged) >= time.Minute {
		l.lastLogged = now
		d := l.dropped - l.droppedSeen
		l.droppedSeen = l.dropped
		return false, d
	}
	return false, 0
}

// pruneLocked drops the buckets of peers that are full again (idle for a burst), or else half.
func (l *inLimiter) pruneLocked(now time.Time) {
	for k, p := range l.peers {
		if now.Sub(p.frames.at) >= limitBurst && now.Sub(p.bytes.at) >= limitBurst {
			delete(l.peers, k)
		}
	}
	for k := range l.peers {
		if len(l.peers) < maxLimitedPeers/2 {
			return
		}
		delete(l.peers, k)
	}
}

// Dropped is how many inbound frames the limits dropped so far.
func (l *inLimiter) droppedFrames() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

// InDropped is how many inbound frames the InLimits dropped so far.
func (g *Gossip) InDropped() uint64 { return g.lim.droppedFrames() }
