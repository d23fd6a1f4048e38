package gateway

// Fetch sessions (KIP-227), Fetch v7+.
//
// A client opens a session with a full fetch (session id 0 or its old id, epoch 0); the
// answer carries a new session id when the cache has room. The client then sends
// incremental fetches (that id, epoch 1, 2, …) naming only the partitions it adds or whose
// fetch position changed, plus forgotten topics, and the gateway fetches every partition of
// the session but answers only those with something to say. Epoch -1 (a full fetch that
// opens nothing) closes the session named. The rules are those of Apache Kafka's
// FetchManager / FetchSessionCache (core/src/main/scala/kafka/server/FetchSession.scala):
//
//   - full fetch (epoch 0 or -1): the session named, if any, is removed; epoch 0 then tries to
//     create a session holding the request's partitions (id in [1, 2^31-1), next expected
//     epoch 1); epoch -1 answers without a session. The answer holds every partition.
//   - incremental fetch (any other epoch): unknown id → FETCH_SESSION_ID_NOT_FOUND; epoch
//     not the one expected → INVALID_FETCH_SESSION_EPOCH; a v13+ request on a v7–12 session
//     or the reverse → FETCH_SESSION_TOPIC_ID_ERROR (all with session id 0 and no
//     partitions). Otherwise the request's partitions are added or updated (fetch offset,
//     partition max bytes), forgotten topics removed (after the additions, as Kafka), the
//     expected epoch advances (MaxInt32 wraps to 1) and the session is touched. A session
//     left empty is removed and the request answered without a session.
//   - an incremental answer holds a partition when it has records, its high watermark or log
//     start offset changed since the session last answered it, or it has an error (the
//     cached high watermark then becomes -1, so the partition is answered again once the
//     error clears). A partition answered with records moves to the end of the session's
//     order, so that partitions early in the order cannot take every fetch's byte budget.
//   - if another request on the session moved the epoch on while this one was fetching, this
//     one is answered INVALID_FETCH_SESSION_EPOCH (a duplicate request).
//   - v13+ sessions are keyed by topic id. A name is resolved when a topic enters the session
//     and retried while unknown (UNKNOWN_TOPIC_ID meanwhile); a named topic whose name now
//     belongs to another id (deleted and created again) is INCONSISTENT_TOPIC_ID, one this
//     gateway saw deleted is UNKNOWN_TOPIC_ID.
//
// Cache and eviction (Kafka's rules; FetchSessionConfig has the bounds). A new session
// takes a free slot; with none free it may evict: first the least recently used session
// if it was unused for EvictAfter (2 minutes, Kafka's MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS);
// otherwise the least valuable evictable session (ordered by privileged, then size in
// partitions, then id), if the new one is at least as valuable. A session is evictable by
// everyone when, at its last use, it was older than EvictAfter; by privileged clients
// (followers, replica id >= 0) also when it is not privileged itself. Beyond Kafka, all
// sessions together hold at most MaxPartitions partitions: a new session that does not fit
// evicts by the same rules until it does (or opens no session), and an incremental fetch
// that would grow past the bound removes its session and is answered
// FETCH_SESSION_ID_NOT_FOUND (clients then start over with a full fetch, as after an
// eviction).
//
// The cache is one per Server, shared by all its connections: a client may use its session
// on any connection to this gateway (Kafka's cache is per broker). The broker still reads
// every partition of a session on each fetch (one Backend.Fetch naming them all); what the
// session saves is the client's request and answer bytes and the gateway's decoding and
// encoding of unchanged partitions.

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/kafkawire"
)

// FetchSessionConfig bounds the gateway's fetch-session cache (KIP-227).
type FetchSessionConfig struct {
	// Slots is the most sessions kept at once (Kafka's
	// max.incremental.fetch.session.cache.slots, default 1000). Negative: no sessions, every
	// fetch is a full fetch (the answer's session id is 0).
	Slots int
	// MaxPartitions is the most partitions all sessions together hold (default 1,000,000;
	// a cached partition costs about 80 bytes, so the default bounds the cache near 80 MB).
	MaxPartitions int
	// EvictAfter is how long a session is protected from eviction by a newer one (Kafka's
	// 2 minutes when 0).
	EvictAfter time.Duration
	// Clock tells the time for eviction (nil: the wall clock).
	Clock clock.Clock
}

// FetchSessionStats counts the fetch-session cache's work since the Server started.
type FetchSessionStats struct {
	Sessions   int // sessions in the cache now
	Partitions int // partitions held by all sessions now

	FullFetches        uint64 // full fetches opening (epoch 0) or closing (epoch -1, id set) a session
	IncrementalFetches uint64 // incremental fetches answered without a session error
	SessionErrors      uint64 // incremental fetches answered with a session error

	FullRequestPartitions        uint64 // partitions named by full fetches
	IncrementalRequestPartitions uint64 // partitions named (added or changed) by incremental fetches
	IncrementalAnswerPartitions  uint64 // partitions in the answers to incremental fetches
	IncrementalSessionPartitions uint64 // partitions fetched for incremental fetches (their sessions' sizes)

	Created uint64 // sessions created
	Evicted uint64 // sessions evicted to make room
	Closed  uint64 // sessions removed by the client (a full fetch naming them) or left empty
}

const (
	sessionFinalEpoch      int32 = -1
	defaultSessionSlots          = 1000
	defaultSessionParts          = 1_000_000
	defaultSessionEvictAge       = 2 * time.Minute
)

// nextSessionEpoch is Kafka's FetchMetadata.nextEpoch.
func nextSessionEpoch(e int32) int32 {
	switch {
	case e < 0:
		return 0 // the final epoch is followed by the initial one
	case e == math.MaxInt32:
		return 1
	default:
		return e + 1
	}
}

// fetchSessionCache holds the sessions of one Server. Lock order: cache.mu, then a
// session's mu.
type fetchSessionCache struct {
	slots      int
	maxParts   int
	evictAfter time.Duration
	clock      clock.Clock
	newID      func() int32 // a random id in [1, MaxInt32)

	mu       sync.Mutex
	sessions map[int32]*fetchSession // guarded by mu
	parts    int                     // sum of the sessions' cachedSize; guarded by mu

	stats struct {
		full, incremental, sessionErrors                   atomic.Uint64
		fullParts, incParts, incAnswerParts, incFetchParts atomic.Uint64
		created, evicted, closed                           atomic.Uint64
	}
}

// newFetchSessionCache returns the cache for cfg, or nil when sessions are off.
func newFetchSessionCache(cfg FetchSessionConfig) *fetchSessionCache {
	if cfg.Slots < 0 {
		return nil
	}
	c := &fetchSessionCache{
		slots: cfg.Slots, maxParts: cfg.MaxPartitions, evictAfter: cfg.EvictAfter, clock: clock.Or(cfg.Clock),
		newID:    func() int32 { return rand.Int32N(math.MaxInt32-1) + 1 },
		sessions: map[int32]*fetchSession{},
	}
	if c.slots == 0 {
		c.slots = defaultSessionSlots
	}
	if c.maxParts <= 0 {
		c.maxParts = defaultSessionParts
	}
	if c.evictAfter <= 0 {
		c.evictAfter = defaultSessionEvictAge
	}
	return c
}

// fetchSession is one session: its partitions in fetch order (a doubly linked list over a
// slab), indexed by (topic, partition).
type fetchSession struct {
	// Guarded by the cache's mu.
	id            int32
	privileged    bool
	created       time.Time
	lastUsed      time.Time
	cachedSize    int  // size at the last touch (-1 before the first)
	evictableAll  bool // evictable by any new session (Kafka's evictableByAll), set at touch
	evictablePriv bool // evictable by a privileged new session, set at touch
	removed       bool // no longer in the cache

	usesIDs bool // v13+ session: topics keyed by id; immutable

	mu         sync.Mutex
	epoch      int32              // the epoch the next incremental request must carry; guarded by mu
	topics     []sessionTopic     // guarded by mu
	byName     map[string]int32   // topic name -> index in topics (v7–12); guarded by mu
	byID       map[[16]byte]int32 // topic id -> index in topics (v13+); guarded by mu
	freeTopics []int32            // unused entries of topics; guarded by mu
	parts      []sessionPart      // slab; guarded by mu
	index      map[uint64]int32   // partKey -> slot in parts; guarded by mu
	head, tail int32              // fetch order (-1: empty); guarded by mu
	free       int32              // first free slot (-1: none), chained through next; guarded by mu
	n          int                // partitions in the session; guarded by mu
}

type sessionTopic struct {
	name string   // "" while a v13+ id is unresolved
	id   [16]byte // zero for v7–12 sessions
	n    int32    // partitions of this topic in the session (0: entry free)
}

// sessionPart is one cached partition (48 bytes).
type sessionPart struct {
	topic       int32 // index in topics
	partition   int32
	fetchOffset int64
	maxBytes    int32
	prev, next  int32
	hw          int64 // last high watermark answered (-1: none, or an error since)
	logStart    int64 // last log start offset answered
}

func partKey(topic, partition int32) uint64 {
	return uint64(uint32(topic))<<32 | uint64(uint32(partition))
}

func newFetchSession(usesIDs bool, sizeHint int) *fetchSession {
	s := &fetchSession{
		usesIDs: usesIDs, cachedSize: -1, head: -1, tail: -1, free: -1,
		parts: make([]sessionPart, 0, sizeHint), index: make(map[uint64]int32, sizeHint),
	}
	if usesIDs {
		s.byID = map[[16]byte]int32{}
	} else {
		s.byName = map[string]int32{}
	}
	return s
}

// topicIndex returns the index of the topic named by name (v7–12) or id (v13+), adding it
// when create is set (-1 when absent and not created).
func (s *fetchSession) topicIndex(name string, id [16]byte, create bool) int32 {
	var i int32
	var ok bool
	if s.usesIDs {
		i, ok = s.byID[id]
	} else {
		i, ok = s.byName[name]
	}
	if ok || !create {
		if !ok {
			return -1
		}
		return i
	}
	t := sessionTopic{name: name, id: id}
	if k := len(s.freeTopics); k > 0 {
		i = s.freeTopics[k-1]
		s.freeTopics = s.freeTopics[:k-1]
		s.topics[i] = t
	} else {
		i = int32(len(s.topics))
		s.topics = append(s.topics, t)
	}
	if s.usesIDs {
		s.byID[id] = i
	} else {
		s.byName[name] = i
	}
	return i
}

// upsert adds (topic, partition) at the end of the order, or updates its request fields.
func (s *fetchSession) upsert(topic, partition int32, offset int64, maxBytes int32, hw, logStart int64) {
	if slot, ok := s.index[partKey(topic, partition)]; ok {
		p := &s.parts[slot]
		p.fetchOffset, p.maxBytes = offset, maxBytes
		return
	}
	p := sessionPart{topic: topic, partition: partition, fetchOffset: offset, maxBytes: maxBytes, hw: hw, logStart: logStart, prev: s.tail, next: -1}
	var slot int32
	if s.free >= 0 {
		slot = s.free
		s.free = s.parts[slot].next
		s.parts[slot] = p
	} else {
		slot = int32(len(s.parts))
		s.parts = append(s.parts, p)
	}
	s.link(slot)
	s.index[partKey(topic, partition)] = slot
	s.topics[topic].n++
	s.n++
}

// link appends slot (whose prev is already s.tail) to the order.
func (s *fetchSession) link(slot int32) {
	if s.tail >= 0 {
		s.parts[s.tail].next = slot
	} else {
		s.head = slot
	}
	s.tail = slot
}

func (s *fetchSession) unlink(slot int32) {
	p := &s.parts[slot]
	if p.prev >= 0 {
		s.parts[p.prev].next = p.next
	} else {
		s.head = p.next
	}
	if p.next >= 0 {
		s.parts[p.next].prev = p.prev
	} else {
		s.tail = p.prev
	}
}

// forget removes (topic, partition) if present.
func (s *fetchSession) forget(topic, partition int32) {
	key := partKey(topic, partition)
	slot, ok := s.index[key]
	if !ok {
		return
	}
	s.unlink(slot)
	delete(s.index, key)
	s.parts[slot] = sessionPart{next: s.free}
	s.free = slot
	s.n--
	t := &s.topics[topic]
	if t.n--; t.n == 0 {
		if s.usesIDs {
			delete(s.byID, t.id)
		} else {
			delete(s.byName, t.name)
		}
		*t = sessionTopic{}
		s.freeTopics = append(s.freeTopics, topic)
	}
}

// moveToEnd puts slot last in the fetch order.
func (s *fetchSession) moveToEnd(slot int32) {
	if s.tail == slot {
		return
	}
	s.unlink(slot)
	s.parts[slot].prev, s.parts[slot].next = s.tail, -1
	s.link(slot)
}

// update applies an incremental request's partitions and forgotten topics (Kafka's
// FetchSession.update) and reports how many partitions the request named.
func (s *fetchSession) update(req *kmsg.FetchRequest) int {
	named := 0
	for i := range req.Topics {
		t := &req.Topics[i]
		ti := s.topicIndex(t.Topic, t.TopicID, true)
		for _, p := range t.Partitions {
			s.upsert(ti, p.Partition, p.FetchOffset, p.PartitionMaxBytes, -1, -1)
		}
		named += len(t.Partitions)
		if s.topics[ti].n == 0 { // a topic named with no partitions
			s.forgetTopicEntry(ti)
		}
	}
	for i := range req.ForgottenTopics {
		f := &req.ForgottenTopics[i]
		ti := s.topicIndex(f.Topic, f.TopicID, false)
		if ti < 0 {
			continue
		}
		for _, p := range f.Partitions {
			if s.topics[ti].n == 0 {
				break // the topic entry was freed with its last partition
			}
			s.forget(ti, p)
		}
	}
	return named
}

// forgetTopicEntry frees a topic entry that holds no partition.
func (s *fetchSession) forgetTopicEntry(ti int32) {
	t := &s.topics[ti]
	if s.usesIDs {
		delete(s.byID, t.id)
	} else {
		delete(s.byName, t.name)
	}
	*t = sessionTopic{}
	s.freeTopics = append(s.freeTopics, ti)
}

// touch records a use of s at now (Kafka's FetchSessionCache.touch). Caller holds c.mu and
// s.mu.
func (c *fetchSessionCache) touch(s *fetchSession, now time.Time) {
	s.lastUsed = now
	if s.cachedSize >= 0 {
		c.parts -= s.cachedSize
	}
	s.cachedSize = s.n
	c.parts += s.n
	old := now.Sub(s.created) > c.evictAfter
	s.evictablePriv = !s.privileged || old
	s.evictableAll = old
}

// removeLocked drops s from the cache. Caller holds c.mu.
func (c *fetchSessionCache) removeLocked(s *fetchSession) {
	if s.removed {
		return
	}
	s.removed = true
	delete(c.sessions, s.id)
	if s.cachedSize > 0 {
		c.parts -= s.cachedSize
	}
}

// close removes the session with this id, if any (a full fetch naming it).
func (c *fetchSessionCache) close(id int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.sessions[id]; ok {
		c.removeLocked(s)
		c.stats.closed.Add(1)
	}
}

// tryEvict evicts one session to make room for a new one of size partitions (Kafka's
// FetchSessionCache.tryEvict). Caller holds c.mu.
func (c *fetchSessionCache) tryEvict(privileged bool, size int, now time.Time) bool {
	var lru, victim *fetchSession
	for _, s := range c.sessions {
		if lru == nil || s.lastUsed.Before(lru.lastUsed) || (s.lastUsed.Equal(lru.lastUsed) && s.id < lru.id) {
			lru = s
		}
		if (privileged && s.evictablePriv) || (!privileged && s.evictableAll) {
			if victim == nil || evictableLess(s, victim) {
				victim = s
			}
		}
	}
	switch {
	case lru == nil:
		return false
	case now.Sub(lru.lastUsed) > c.evictAfter:
		victim = lru // stale
	case victim == nil:
		return false
	case evictableCmp(privileged, size, 0, victim.privileged, victim.cachedSize, victim.id) < 0:
		return false // the new session is worth less than the cheapest evictable one
	}
	c.removeLocked(victim)
	c.stats.evicted.Add(1)
	return true
}

// evictableCmp orders sessions by Kafka's EvictableKey: privileged, then size, then id.
func evictableCmp(aPriv bool, aSize int, aID int32, bPriv bool, bSize int, bID int32) int {
	switch {
	case aPriv != bPriv:
		if aPriv {
			return 1
		}
		return -1
	case aSize != bSize:
		if aSize < bSize {
			return -1
		}
		return 1
	case aID != bID:
		if aID < bID {
			return -1
		}
		return 1
	}
	return 0
}

func evictableLess(a, b *fetchSession) bool {
	return evictableCmp(a.privileged, a.cachedSize, a.id, b.privileged, b.cachedSize, b.id) < 0
}

// create adds s (built by the caller, not yet shared) when there is room or room can be made
// by eviction, and returns its id (0: no session).
func (c *fetchSessionCache) create(s *fetchSession, privileged bool, now time.Time) int32 {
	size := s.n
	if size > c.maxParts {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.sessions) >= c.slots || c.parts+size > c.maxParts {
		if !c.tryEvict(privileged, size, now) {
			return 0
		}
	}
	id := c.newID()
	for c.sessions[id] != nil {
		id = c.newID()
	}
	s.id, s.privileged, s.created, s.epoch = id, privileged, now, nextSessionEpoch(0)
	c.sessions[id] = s
	s.mu.Lock()
	c.touch(s, now)
	s.mu.Unlock()
	c.stats.created.Add(1)
	return id
}

// sessionFetch is one incremental fetch in flight: the session's partitions as they were
// when the request was applied.
type sessionFetch struct {
	s      *fetchSession
	epoch  int32 // the session's epoch once this request was applied
	items  []sessionItem
	topics []sessionTopic // the session's topic table then (names may be resolved later)
}

type sessionItem struct {
	slot      int32
	topic     int32
	partition int32
	offset    int64
	maxBytes  int32
}

// begin applies an incremental request (Kafka's FetchManager.newContext for a non-full
// epoch). It returns the fetch to run, or a session error code; empty reports a session
// that the request left empty (removed: answer the request's partitions without a session).
func (c *fetchSessionCache) begin(req *kmsg.FetchRequest, now time.Time) (f *sessionFetch, errCode int16, empty bool) {
	c.mu.Lock()
	s, ok := c.sessions[req.SessionID]
	if !ok {
		c.mu.Unlock()
		return nil, kafkawire.ErrFetchSessionIDNotFound, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.epoch != req.SessionEpoch:
		c.mu.Unlock()
		return nil, kafkawire.ErrInvalidFetchSessionEpoch, false
	case s.usesIDs != (req.Version >= 13):
		c.mu.Unlock()
		return nil, kafkawire.ErrFetchSessionTopicIDError, false
	}
	named := s.update(req)
	c.stats.incParts.Add(uint64(named))
	if s.n == 0 {
		c.removeLocked(s)
		c.stats.closed.Add(1)
		c.mu.Unlock()
		return nil, 0, true
	}
	if c.parts-max(s.cachedSize, 0)+s.n > c.maxParts {
		// Growing past the cache's bound: drop the session as if evicted.
		c.removeLocked(s)
		c.stats.evicted.Add(1)
		c.mu.Unlock()
		return nil, kafkawire.ErrFetchSessionIDNotFound, false
	}
	c.touch(s, now)
	s.epoch = nextSessionEpoch(s.epoch)
	c.mu.Unlock()

	f = &sessionFetch{s: s, epoch: s.epoch, items: make([]sessionItem, 0, s.n), topics: append([]sessionTopic(nil), s.topics...)}
	for slot := s.head; slot >= 0; slot = s.parts[slot].next {
		p := &s.parts[slot]
		f.items = append(f.items, sessionItem{slot: slot, topic: p.topic, partition: p.partition, offset: p.fetchOffset, maxBytes: p.maxBytes})
	}
	return f, 0, false
}

// finish records the answers of an incremental fetch (res parallel to f.items) and reports
// which items the answer includes. ok is false when another request on the session came
// in meanwhile (answer INVALID_FETCH_SESSION_EPOCH).
func (f *sessionFetch) finish(res []brokerop.FetchPartitionResp) (include []bool, ok bool) {
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != f.epoch {
		return nil, false
	}
	for i, t := range f.topics {
		if t.n > 0 && t.name != "" && s.topics[i].name == "" {
			s.topics[i].name = t.name // resolved during this fetch
		}
	}
	include = make([]bool, len(f.items))
	for i := range f.items {
		p := &s.parts[f.items[i].slot]
		r := &res[i]
		must := len(r.Records) > 0
		if p.hw != r.HighWatermark {
			must, p.hw = true, r.HighWatermark
		}
		if p.logStart != r.LogStartOffset {
			must, p.logStart = true, r.LogStartOffset
		}
		if r.ErrorCode != 0 {
			must, p.hw = true, -1
		}
		include[i] = must
		if len(r.Records) > 0 {
			s.moveToEnd(f.items[i].slot)
		}
	}
	return include, true
}

// FetchSessionStats returns the fetch-session counters (zero when sessions are off).
func (s *Server) FetchSessionStats() FetchSessionStats {
	c := s.sessions
	if c == nil {
		return FetchSessionStats{}
	}
	c.mu.Lock()
	st := FetchSessionStats{Sessions: len(c.sessions), Partitions: c.parts}
	c.mu.Unlock()
	st.FullFetches, st.IncrementalFetches, st.SessionErrors = c.stats.full.Load(), c.stats.incremental.Load(), c.stats.sessionErrors.Load()
	st.FullRequestPartitions, st.IncrementalRequestPartitions = c.stats.fullParts.Load(), c.stats.incParts.Load()
	st.IncrementalAnswerPartitions, st.IncrementalSessionPartitions = c.stats.incAnswerParts.Load(), c.stats.incFetchParts.Load()
	st.Created, st.Evicted, st.Closed = c.stats.created.Load(), c.stats.evicted.Load(), c.stats.closed.Load()
	return st
}

// fetchTarget is one partition a session-aware fetch reads: its topic name ("" when unknown)
// and id, and the answer group (a topic entry of the response) it belongs to.
type fetchTarget struct {
	group     int32
	name      string
	id        [16]byte
	partition int32
	offset    int64
	maxBytes  int32
	errCode   int16 // answered without fetching (unknown or inconsistent topic id)
}

// handleSessionFetch serves Fetch v7+ when the server keeps sessions and the request names
// a session or asks for one (a sessionless fetch, id 0 and epoch -1, as librdkafka, kafka-go
// and kafkajs send, is served by handleFetch as before).
func handleSessionFetch(ctx context.Context, r *Request, req *kmsg.FetchRequest) (kmsg.Response, error) {
	c := r.Server.sessions
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	now := c.clock.Now()
	privileged := req.ReplicaID >= 0
	if req.Version >= 15 {
		privileged = req.ReplicaState.ID >= 0
	}
	if req.SessionEpoch != 0 && req.SessionEpoch != sessionFinalEpoch {
		f, errCode, empty := c.begin(req, now)
		switch {
		case errCode != 0:
			c.stats.sessionErrors.Add(1)
			resp.ErrorCode = errCode
			return resp, nil
		case !empty:
			return incrementalFetch(ctx, r, req, f)
		}
		// The request emptied its session: answer its own partitions without a session.
		return fullFetch(ctx, r, req, false, privileged, now)
	}
	c.stats.full.Add(1)
	if req.SessionID != 0 {
		c.close(req.SessionID) // any session named by a full fetch is closed
	}
	return fullFetch(ctx, r, req, req.SessionEpoch == 0, privileged, now)
}

// fullFetch answers every partition of req, in request order, and opens a session holding
// them when open is set and the cache has room.
func fullFetch(ctx context.Context, r *Request, req *kmsg.FetchRequest, open, privileged bool, now time.Time) (kmsg.Response, error) {
	c := r.Server.sessions
	names := fetchTopicNames(ctx, r, req)
	n := 0
	for i := range req.Topics {
		n += len(req.Topics[i].Partitions)
	}
	c.stats.fullParts.Add(uint64(n))
	targets := make([]fetchTarget, 0, n)
	for i := range req.Topics {
		t := &req.Topics[i]
		for _, p := range t.Partitions {
			ft := fetchTarget{group: int32(i), name: names[i], id: t.TopicID, partition: p.Partition, offset: p.FetchOffset, maxBytes: p.PartitionMaxBytes}
			if ft.name == "" && req.Version >= 13 {
				ft.errCode = kafkawire.ErrUnknownTopicID
			}
			targets = append(targets, ft)
		}
	}
	res, release := fetchTargets(ctx, r, req, targets)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.Topics = answerTopics(req, targets, res, nil)
	if open {
		s := newFetchSession(req.Version >= 13, n)
		for i := range targets {
			t := &targets[i]
			ti := s.topicIndex(t.name, t.id, true)
			s.topics[ti].name = t.name
			hw := res[i].HighWatermark
			if res[i].ErrorCode != 0 {
				hw = -1
			}
			s.upsert(ti, t.partition, t.offset, t.maxBytes, hw, res[i].LogStartOffset)
		}
		resp.SessionID = c.create(s, privileged, now)
	}
	if release != nil {
		return fetchAnswer{resp, release}, nil
	}
	return resp, nil
}

// incrementalFetch fetches every partition of f's session and answers those with news.
func incrementalFetch(ctx context.Context, r *Request, req *kmsg.FetchRequest, f *sessionFetch) (kmsg.Response, error) {
	c := r.Server.sessions
	// Resolve the topics still unknown, and check the known ones still carry their id.
	if f.s.usesIDs {
		var ids [][16]byte
		var at []int
		for i := range f.topics {
			t := &f.topics[i]
			if t.n == 0 {
				continue
			}
			if t.name == "" {
				ids, at = append(ids, t.id), append(at, i)
			}
		}
		if len(ids) > 0 {
			for k, name := range r.Server.topics.names(ctx, ids) {
				f.topics[at[k]].name = name
			}
		}
	}
	topicErr := make([]int16, len(f.topics))
	for i := range f.topics {
		t := &f.topics[i]
		switch {
		case t.n == 0:
		case t.name == "":
			topicErr[i] = kafkawire.ErrUnknownTopicID
		case f.s.usesIDs:
			if id, ok := r.Server.topics.idOf(t.name); !ok {
				topicErr[i] = kafkawire.ErrUnknownTopicID
			} else if id != t.id {
				topicErr[i] = kafkawire.ErrInconsistentTopicID
			}
		}
	}
	targets := make([]fetchTarget, len(f.items))
	for i, it := range f.items {
		t := &f.topics[it.topic]
		targets[i] = fetchTarget{group: it.topic, name: t.name, id: t.id, partition: it.partition, offset: it.offset, maxBytes: it.maxBytes, errCode: topicErr[it.topic]}
	}
	c.stats.incFetchParts.Add(uint64(len(targets)))
	res, release := fetchTargets(ctx, r, req, targets)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	include, ok := f.finish(res)
	if !ok {
		if release != nil {
			release()
		}
		c.stats.sessionErrors.Add(1)
		resp.ErrorCode = kafkawire.ErrInvalidFetchSessionEpoch
		return resp, nil
	}
	c.stats.incremental.Add(1)
	resp.SessionID = req.SessionID
	resp.Topics = answerTopics(req, targets, res, include)
	for _, in := range include {
		if in {
			c.stats.incAnswerParts.Add(1)
		}
	}
	if release != nil {
		return fetchAnswer{resp, release}, nil
	}
	return resp, nil
}

// fetchTargets reads targets (those without an errCode) from the backend and returns one
// answer per target; a target not read carries its errCode and high watermark -1.
func fetchTargets(ctx context.Context, r *Request, req *kmsg.FetchRequest, targets []fetchTarget) ([]brokerop.FetchPartitionResp, func()) {
	authorized := r.authorizedFn(ctx)
	for i := range targets {
		if t := &targets[i]; t.errCode == 0 && t.name != "" && !authorized(acl.FetchTopic, t.name) {
			t.errCode = kerr.TopicAuthorizationFailed.Code
		}
	}
	n := 0
	for i := range targets {
		if targets[i].errCode == 0 {
			n++
		}
	}
	breq := newFetchReq(req, n)
	for i := range targets {
		if t := &targets[i]; t.errCode == 0 {
			breq.Partitions = append(breq.Partitions, brokerop.FetchPartition{Topic: t.name, Partition: t.partition, Offset: t.offset, MaxBytes: t.maxBytes})
		}
	}
	bresp, release, errCode := fetchPooled(ctx, r, breq)
	res := make([]brokerop.FetchPartitionResp, len(targets))
	bi := 0
	for i := range targets {
		t, out := &targets[i], &res[i]
		switch {
		case t.errCode != 0:
			out.ErrorCode, out.HighWatermark, out.LastStableOffset, out.LogStartOffset = t.errCode, -1, -1, -1
		case errCode != 0:
			out.ErrorCode, out.HighWatermark, out.LastStableOffset, out.LogStartOffset = errCode, -1, -1, -1
		default:
			*out = bresp.Partitions[bi]
			bi++
		}
	}
	return res, release
}

// answerTopics builds the response's topics from targets and their answers, keeping the
// targets with include set (all when include is nil), grouped into topic entries in order of
// first appearance.
func answerTopics(req *kmsg.FetchRequest, targets []fetchTarget, res []brokerop.FetchPartitionResp, include []bool) []kmsg.FetchResponseTopic {
	var topics []kmsg.FetchResponseTopic
	pos := map[int32]int{} // group -> index in topics
	for i := range targets {
		if include != nil && !include[i] {
			continue
		}
		t := &targets[i]
		k, ok := pos[t.group]
		if !ok {
			k = len(topics)
			pos[t.group] = k
			topics = append(topics, kmsg.NewFetchResponseTopic())
			rt := &topics[k]
			rt.Topic, rt.TopicID = t.name, t.id
			if req.Version < 13 {
				rt.TopicID = [16]byte{}
			}
		}
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition = t.partition
		b := &res[i]
		rp.ErrorCode, rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = b.ErrorCode, b.HighWatermark, b.LastStableOffset, b.LogStartOffset
		rp.RecordBatches = noRecords // librdkafka rejects a null record set
		if b.Records != nil {
			rp.RecordBatches = b.Records
		}
		topics[k].Partitions = append(topics[k].Partitions, rp)
	}
	return topics
}

// idOf returns the id the cache knows for a topic name.
func (c *topicIDCache) idOf(name string) ([16]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.byName[name]
	return id, ok
}
