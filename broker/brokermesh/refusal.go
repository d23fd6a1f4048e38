package brokermesh

// Refusals of untrusted nodes (issue #17 item 4), on both sides:
//
//   - the broker closes an untrusted node's connection with ErrCodeUntrusted and logs it once
//     per node per RefusalLogEvery (one minute), with the number of refusals since the last
//     line, instead of once per connection attempt (a gateway retries every second);
//   - the caller turns that close into a *NotTrustedError (still wrapping ErrUnavailable, so
//     the gateway's retry and rotation rules are unchanged), which the gateway answers Kafka
//     clients with CLUSTER_AUTHORIZATION_FAILED instead of a retriable leader error, and logs
//     once per broker (RefusalNotice) with the way to fix it.

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// RefusalLogEvery is how often a broker logs refusals of one node.
const RefusalLogEvery = time.Minute

// maxRefusalPeers bounds the nodes whose refusals are remembered (keys are free: a flood of
// fresh keys must not grow the broker's memory); past it, the oldest are dropped first.
const maxRefusalPeers = 4096

// kafkaClusterAuthorizationFailed is Kafka's CLUSTER_AUTHORIZATION_FAILED.
const kafkaClusterAuthorizationFailed int16 = 31

// refusalLog throttles the broker's refusal log lines: per node, one line per interval.
type refusalLog struct {
	clk      clock.Clock
	every    time.Duration
	log      *slog.Logger
	maxPeers int // nodes remembered at most (maxRefusalPeers; tests make it small)

	mu    sync.Mutex
	peers map[key.PublicKey]*refusals // guarded by mu
}

type refusals struct {
	logged time.Time // when a line was last written
	since  int       // refusals since then, not logged yet
}

func newRefusalLog(log *slog.Logger, clk clock.Clock) *refusalLog {
	return &refusalLog{clk: clock.Or(clk), every: RefusalLogEvery, log: log, maxPeers: maxRefusalPeers, peers: map[key.PublicKey]*refusals{}}
}

// refused records one refusal of id and logs it unless id was logged within the interval.
func (r *refusalLog) refused(id key.PublicKey, addr string) {
	now := r.clk.Now()
	r.mu.Lock()
	p := r.peers[id]
	if p == nil {
		if len(r.peers) >= r.maxPeers {
			r.pruneLocked(now)
		}
		p = &refusals{}
		r.peers[id] = p
	}
	p.since++
	if !p.logged.IsZero() && now.Sub(p.logged) < r.every {
		r.mu.Unlock()
		return
	}
	n := p.since
	p.logged, p.since = now, 0
	r.mu.Unlock()
	r.log.Warn("kafkaop: refusing untrusted node (add it to this broker's -trust, or give it the gateway role: broker quorum allow -role gateway <NodeId>); logged once a minute per node",
		"node", id.String(), "addr", addr, "refusals", n)
}

// pruneLocked drops nodes not logged within the interval, or else the oldest half.
func (r *refusalLog) pruneLocked(now time.Time) {
	for id, p := range r.peers {
		if now.Sub(p.logged) >= r.every {
			delete(r.peers, id)
		}
	}
	if len(r.peers) < r.maxPeers {
		return
	}
	var oldest time.Time
	for _, p := range r.peers {
		if oldest.IsZero() || p.logged.Before(oldest) {
			oldest = p.logged
		}
	}
	cut := oldest.Add(now.Sub(oldest) / 2)
	for id, p := range r.peers {
		if !p.logged.After(cut) {
			delete(r.peers, id)
		}
	}
}

// NotTrustedError is a call the broker refused because it does not trust this node (its
// connection was closed with ErrCodeUntrusted). It wraps ErrUnavailable.
type NotTrustedError struct {
	Broker string // the broker's name (the caller's Remote)
	Reason string // the broker's close message, naming this node
	err    error
}

func (e *NotTrustedError) Error() string {
	return fmt.Sprintf("kafkaop: broker %s refused this node (not trusted): %s", e.Broker, e.Reason)
}

// Unwrap returns ErrUnavailable and the transport error.
func (e *NotTrustedError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// KafkaErrorCode is the Kafka error a gateway answers for it: CLUSTER_AUTHORIZATION_FAILED.
func (e *NotTrustedError) KafkaErrorCode() int16 { return kafkaClusterAuthorizationFailed }

// notTrusted returns err as a *NotTrustedError if it is the broker's refusal, else err.
func notTrusted(remote string, err error) error {
	var ae *quic.ApplicationError
	if err == nil || !errors.As(err, &ae) || !ae.Remote || ae.ErrorCode != ErrCodeUntrusted {
		return err
	}
	return &NotTrustedError{Broker: remote, Reason: ae.ErrorMessage, err: err}
}

// RefusalNotice logs, once per broker, that a broker refused this node, with how to admit it.
// Callers given one (Caller.NoticeRefusals) report to it. Safe for concurrent use.
type RefusalNotice struct {
	Log  *slog.Logger
	Self key.PublicKey // this node's NodeId, for the message

	mu   sync.Mutex
	seen map[string]bool // guarded by mu: brokers already reported
}

// Note logs err once per broker if it is a *NotTrustedError; it reports whether it was one.
func (n *RefusalNotice) Note(err error) bool {
	var nt *NotTrustedError
	if !errors.As(err, &nt) {
		return false
	}
	n.mu.Lock()
	if n.seen == nil {
		n.seen = map[string]bool{}
	}
	first := !n.seen[nt.Broker] && len(n.seen) < maxRefusalPeers
	n.seen[nt.Broker] = true
	n.mu.Unlock()
	if first && n.Log != nil {
		id := n.Self.String()
		n.Log.Error(fmt.Sprintf("broker %s refused this node (not trusted); add %s with `broker quorum allow -role gateway %s` (or to that broker's -trust list); Kafka clients get CLUSTER_AUTHORIZATION_FAILED until then",
			nt.Broker, id, id), "reason", strings.TrimSpace(nt.Reason))
	}
	return true
}
