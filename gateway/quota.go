package gateway

// Client quota enforcement: producer_byte_rate and consumer_byte_rate, as Kafka applies them.
//
// The quotas themselves are stored by the backend (DescribeClientQuotas / AlterClientQuotas);
// the gateway reads all of them (one DescribeClientQuotas) and keeps them for
// Config.Quotas.Refresh (default 10 s), or until an AlterClientQuotas passes through it.
//
// A request's quota is found with Kafka's precedence, the user being the connection's
// authenticated principal's name (SASL or mTLS; ANONYMOUS without authentication):
//
//	user+client-id, user+default client-id, user, default user+client-id,
//	default user+default client-id, default user, client-id, default client-id
//
// Each quota entity limits one token bucket: an exact entity's bucket is shared by every
// connection that maps to it, a default entity gives each actual user / client id its own
// bucket (Kafka's sanitized quota metric tags). A bucket refills at the quota rate and holds
// at most one second of it; every Produce consumes its request size, every Fetch the bytes
// of its answer's record sets. A request that leaves the bucket in debt is answered at once
// with throttle_time_ms = debt / rate (KIP-219), and the connection is muted for that time:
// its next request is not read before the throttle has passed (so a client that ignores
// throttle_time_ms is held to the quota too). request_percentage and
// controller_mutation_rate are stored and described, not enforced.
//
// Accuracy: a client that always has more to send pays its debt exactly (the bucket refills
// at the quota rate whatever the mute lasted; a shorter mute only deepens the debt the next
// throttle is computed from), so over a window much longer than the one-second burst its
// rate is the quota: TestProduceQuotaRateKgo and TestFetchQuotaRateKgo measure a greedy kgo
// producer and consumer at 100.1 % and 99.5 % of it over a minute of a synctest bubble's
// clock, and fail outside ±10 %.

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/clock"
)

// QuotaConfig configures quota enforcement.
type QuotaConfig struct {
	// Refresh is how long quotas read from the backend are used before they are read again
	// (default 10 s; an AlterClientQuotas through this gateway refreshes them at once).
	Refresh time.Duration
	// Clock tells the time for the buckets and the refresh (nil: the wall clock).
	Clock clock.Clock
	// Disable turns enforcement off (quotas are still stored and described).
	Disable bool
}

const (
	quotaProduce = "producer_byte_rate"
	quotaFetch   = "consumer_byte_rate"
)

// quotaUser is the user quota entity name of a principal: its name without the "User:"
// type, as Kafka's quota entities name users (ANONYMOUS without authentication).
func quotaUser(principal string) string { return strings.TrimPrefix(principal, "User:") }

// quotas is a Server's quota enforcer.
type quotas struct {
	backend Backend
	clock   clock.Clock
	refresh time.Duration
	off     bool

	mu         sync.Mutex
	byEntity   map[string]map[string]float64 // entity key -> quota key -> value; guarded by mu
	loadedAt   time.Time                     // guarded by mu
	stale      bool                          // guarded by mu: read again before use
	refreshing bool                          // guarded by mu: one request reads, others use the old set
	buckets    map[string]*bucket            // guarded by mu
}

type bucket struct {
	tokens float64 // bytes; negative is debt
	rate   float64 // bytes per second
	last   time.Time
}

func newQuotas(b Backend, cfg QuotaConfig) *quotas {
	q := &quotas{backend: b, clock: clock.Or(cfg.Clock), refresh: cfg.Refresh, off: cfg.Disable, stale: true, buckets: map[string]*bucket{}}
	if q.refresh <= 0 {
		q.refresh = 10 * time.Second
	}
	return q
}

// invalidate makes the next request read the quotas again.
func (q *quotas) invalidate() {
	q.mu.Lock()
	q.stale = true
	q.mu.Unlock()
}

// quotaEntityKey is the map key of an entity: nil is a type the entity lacks, defaultName
// its default entity.
func quotaEntityKey(user, client *string) string {
	k := "c"
	if client != nil {
		k += "=" + *client
	}
	k += "\x01u"
	if user != nil {
		k += "=" + *user
	}
	return k
}

// load reads every quota from the backend when the cached set is stale.
func (q *quotas) load(ctx context.Context) {
	q.mu.Lock()
	now := q.clock.Now()
	if q.refreshing || (!q.stale && now.Sub(q.loadedAt) < q.refresh) {
		q.mu.Unlock()
		return
	}
	q.refreshing = true
	q.mu.Unlock()
	resp, err := q.backend.DescribeClientQuotas(brokerop.WithoutActing(ctx), &brokerop.DescribeClientQuotasReq{})
	q.mu.Lock()
	defer q.mu.Unlock()
	q.refreshing = false
	if err != nil || resp.ErrorCode != 0 {
		// Keep the old set and try again after Refresh (a backend without quotas answers
		// ErrUnsupported: no quotas, asked once per Refresh).
		q.loadedAt, q.stale = now, false
		return
	}
	m := map[string]map[string]float64{}
	for _, e := range resp.Entries {
		var user, client *string
		for _, p := range e.Entity {
			switch p.Type {
			case brokerop.QuotaEntityUser:
				user = orDefault(p.Name)
			case brokerop.QuotaEntityClientID:
				client = orDefault(p.Name)
			}
		}
		if user == nil && client == nil {
			continue
		}
		vals := map[string]float64{}
		for _, v := range e.Values {
			if f, err := strconv.ParseFloat(v.Value, 64); err == nil && f > 0 {
				vals[v.Key] = f
			}
		}
		m[quotaEntityKey(user, client)] = vals
	}
	q.byEntity, q.loadedAt, q.stale = m, now, false
}

// defaultName stands for a default entity in quota keys.
var defaultName = "\x00default"

func orDefault(n *string) *string {
	if n == nil {
		return &defaultName
	}
	return n
}

// match finds the quota of key for (user, client) by Kafka's precedence and the bucket key:
// the entity with each default part replaced by the actual name. ok is false without one.
func (q *quotas) match(key, user, client string) (rate float64, bucketKey string, ok bool) {
	u, c, d := &user, &client, &defaultName
	for _, cd := range [...][2]*string{
		{u, c}, {u, d}, {u, nil}, {d, c}, {d, d}, {d, nil}, {nil, c}, {nil, d},
	} {
		if r, found := q.byEntity[quotaEntityKey(cd[0], cd[1])][key]; found {
			// Default parts are per actual name: key the bucket by the actual names.
			bu, bc := cd[0], cd[1]
			if bu != nil {
				bu = u
			}
			if bc != nil {
				bc = c
			}
			return r, key + "\x02" + quotaEntityKey(bu, bc), true
		}
	}
	return 0, "", false
}

// record charges n bytes of kind key (quotaProduce, quotaFetch) to the client and returns
// the throttle time (0: within its quota).
func (q *quotas) record(ctx context.Context, key, user, client string, n int) time.Duration {
	if q.off {
		return 0
	}
	q.load(ctx)
	q.mu.Lock()
	defer q.mu.Unlock()
	rate, bk, ok := q.match(key, user, client)
	if !ok {
		return 0
	}
	now := q.clock.Now()
	b := q.buckets[bk]
	if b == nil || b.rate != rate {
		b = &bucket{tokens: rate, rate: rate, last: now}
		q.buckets[bk] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(b.rate, b.tokens+el*b.rate)
	}
	b.last = now
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// throttleMillis is d in whole milliseconds for throttle_time_ms (rounded up, capped).
func throttleMillis(d time.Duration) int32 {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return int32(min(ms, 1<<31-1))
}

// throttleFetch charges a Fetch answer's record bytes to the client's consumer quota and
// sets its throttle_time_ms; it returns how long to mute the connection.
func (s *Server) throttleFetch(ctx context.Context, user, clientID string, resp kmsg.Response) time.Duration {
	var fr *kmsg.FetchResponse
	switch r := resp.(type) {
	case fetchAnswer:
		fr = r.FetchResponse
	case *kmsg.FetchResponse:
		fr = r
	default:
		return 0
	}
	n := 0
	for i := range fr.Topics {
		for j := range fr.Topics[i].Partitions {
			n += len(fr.Topics[i].Partitions[j].RecordBatches)
		}
	}
	if n == 0 {
		return 0
	}
	d := s.quotas.record(ctx, quotaFetch, user, clientID, n)
	if d > 0 {
		fr.ThrottleMillis = throttleMillis(d)
	}
	return d
}

// muteFor blocks the connection's reader for d (a quota throttle). It is false when the
// server closed meanwhile.
func (s *Server) muteFor(d time.Duration) bool {
	t := s.quotas.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-s.ctx.Done():
		return false
	}
}
