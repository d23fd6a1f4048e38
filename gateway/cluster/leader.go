package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// Finding a replicated partition's leader when the quorum's record of it is stale.
//
// The quorum learns a partition's new leader from the leader itself (its report, an
// UpdatePartition), some time after the election, and later still when the quorum's own
// leader died with it. Until then Placement names the old leader. So when the leader a
// partition is routed to is down (liveness.go) or has just answered NOT_LEADER_OR_FOLLOWER,
// or the quorum has recorded no leader yet (a new topic: the route would only guess the
// preferred replica), the gateway asks the brokers themselves (findLeader): a ListOffsets of the partition's
// latest offset to every member at once, which only the serving leader answers without
// NOT_LEADER_OR_FOLLOWER, with its leader epoch (the raft term). The answer is kept as a hint
// that routes the partition until the quorum records an epoch at least as high, or the
// hinted broker answers NOT_LEADER_OR_FOLLOWER (missed) or goes down. With no leader yet (an
// election under way) the search goes on every huntInterval or two (ask), for up to
// leaderWait (a Fetch: its MaxWaitMs), so the client's request is held and then sent to the
// new leader instead of failing and coming back after the client's metadata refresh and
// backoff; then NOT_LEADER_OR_FOLLOWER goes to the client. Searches for one partition are
// shared.
//
// A broker that was paused and still believes it leads answers under its old epoch: the
// highest epoch wins.

const (
	leaderWait   = 5 * time.Second        // how long a request waits for a partition's new leader
	huntInterval = 100 * time.Millisecond // between two searches while no broker leads
)

// codeHunt is quorumOwner's answer with hunting off: the partition's leader must be searched.
const codeHunt int16 = -1

// leaderHint is a partition's leader as a broker said it (findLeader).
type leaderHint struct {
	topicID [16]byte
	id      string // NodeId text
	epoch   int32
}

// hunt is one search for a partition's leader that several requests wait for.
type hunt struct {
	done chan struct{}
	b    *Broker // nil: no leader found
	id   string
}

type ctxKey int

const (
	keyLeaderWait ctxKey = iota
	keyNoHunt
)

// withLeaderWait bounds the wait for a new leader of the requests made under ctx.
func withLeaderWait(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, keyLeaderWait, d)
}

func leaderWaitOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Value(keyLeaderWait).(time.Duration); ok {
		return d
	}
	return leaderWait
}

func withNoHunt(ctx context.Context) context.Context { return context.WithValue(ctx, keyNoHunt, true) }

func noHunt(ctx context.Context) bool { return ctx.Value(keyNoHunt) != nil }

// findLeader searches for topic/partition's serving leader (see the top of this file) until
// one is found, leaderWaitOf(ctx) has passed or ctx ends.
func (c *Cluster) findLeader(ctx context.Context, topic string, partition int32) (*Broker, string, bool) {
	hctx, cancel := context.WithTimeout(ctx, leaderWaitOf(ctx))
	defer cancel()
	for {
		if b, id := c.huntOnce(hctx, topic, partition); b != nil {
			return b, id, true
		}
		t := time.NewTimer(huntInterval)
		select {
		case <-hctx.Done():
			t.Stop()
			return nil, "", false
		case <-t.C:
		}
	}
}

// huntOnce asks every member broker once who serves topic/partition (or waits for the
// search in flight) and records the answer as a hint.
func (c *Cluster) huntOnce(ctx context.Context, topic string, partition int32) (*Broker, string) {
	k := tp{topic, partition}
	c.mu.Lock()
	if h := c.hunts[k]; h != nil {
		c.mu.Unlock()
		select {
		case <-h.done:
			return h.b, h.id
		case <-ctx.Done():
			return nil, ""
		}
	}
	h := &hunt{done: make(chan struct{})}
	if c.hunts == nil {
		c.hunts = map[tp]*hunt{}
	}
	c.hunts[k] = h
	targets := map[string]*Broker{}
	for id, b := range c.callers {
		if len(c.members) == 0 || c.members[id] || c.seeds[id] {
			targets[id] = b
		}
	}
	topicID := c.qplace[topic].id
	c.mu.Unlock()

	h.b, h.id = c.ask(ctx, topic, partition, targets, topicID)
	c.mu.Lock()
	delete(c.hunts, k)
	c.mu.Unlock()
	close(h.done)
	return h.b, h.id
}

// ask sends the leader question to every target at once and returns the one answering as
// leader under the highest epoch. It returns once every broker that is up has answered and
// one of them leads, or, when none does, huntInterval after the last of them answered (a down
// one is asked too, in case it is back), or after probeTimeout. While an election is under
// way the search thus asks again every two huntIntervals; it used to wait out probeTimeout
// for the dead leader's answer in every round that found no leader, which held a produce for
// up to a second after the new leader was elected (decision, session 16: the failover
// benchmark's 2.5 s).
func (c *Cluster) ask(ctx context.Context, topic string, partition int32, targets map[string]*Broker, topicID [16]byte) (*Broker, string) {
	actx, cancel := context.WithTimeout(ctx, c.probeTimeout)
	defer cancel()
	type answer struct {
		id      string
		b       *Broker
		awaited bool // up when asked: its answer is waited for
		lead    bool
		epoch   int32
	}
	answers := make(chan answer, len(targets))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // before wg.Wait: the calls still out end now
	awaited := 0   // up brokers that have not answered yet
	for id, b := range targets {
		a := answer{id: id, b: b, awaited: !b.isDown()}
		if a.awaited {
			awaited++
		}
		wg.Go(func() {
			r, err := b.ListOffsets(actx, &brokerop.ListOffsetsReq{Partitions: []brokerop.ListOffsetsPartition{{Topic: topic, Partition: partition, Timestamp: -1}}})
			if err == nil {
				c.heard(b)
				if len(r.Partitions) == 1 && r.Partitions[0].ErrorCode == 0 {
					a.lead, a.epoch = true, r.Partitions[0].LeaderEpoch
				}
			}
			answers <- a
		})
	}
	anyUp := awaited > 0
	var best *answer
	var grace <-chan time.Time // the down brokers' last chance, once the up ones named no leader
collect:
	for range targets {
		select {
		case a := <-answers:
			if a.awaited {
				awaited--
			}
			if a.lead && (best == nil || a.epoch > best.epoch) {
				best = &a
			}
			if awaited == 0 && best != nil {
				break collect
			}
			if awaited == 0 && anyUp && grace == nil {
				t := time.NewTimer(huntInterval)
				defer t.Stop()
				grace = t.C
			}
		case <-grace:
			break collect
		case <-actx.Done():
			break collect
		}
	}
	if best == nil {
		return nil, ""
	}
	c.mu.Lock()
	if c.hints == nil {
		c.hints = map[tp]leaderHint{}
	}
	c.hints[tp{topic, partition}] = leaderHint{topicID: topicID, id: best.id, epoch: best.epoch}
	c.mu.Unlock()
	c.log.Info("partition leader found by asking the brokers", "topic", topic, "partition", partition, "leader", best.b.caller.Remote(), "epoch", best.epoch)
	return best.b, best.id
}
