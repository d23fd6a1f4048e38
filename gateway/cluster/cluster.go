package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/meshctl"
)

// Kafka error codes the cluster produces itself.
const (
	errUnknownTopicOrPartition int16 = 3
	errLeaderNotAvailable      int16 = 5
	errNotLeaderOrFollower     int16 = 6
	errTopicAlreadyExists      int16 = 36
)

// Cluster is the gateway's view of the brokers. It implements every op (brokerop.Service, the
// gateway's Backend) by carrying it to the broker that owns it. With brokers that run the
// metadata quorum it works as the package doc says (quorum.go); with brokers from before the
// quorum (legacy mode):
//
//   - The controller, the broker with the smallest NodeId among the seeds (so every gateway given
//     the same seeds picks the same one), holds the durable topic registry (names, partition
//     counts, configs, topic ids), the consumer groups, and the placement log (PlacementTopic).
//     Metadata, admin and group ops go to it.
//   - Each partition lives on one broker, chosen when the topic is first used (round robin over
//     the brokers sorted by NodeId, starting at a hash of the topic name) and recorded in the
//     placement log, so it stays there: its data lives there. Produce, Fetch and ListOffsets are
//     split by owner, sent concurrently and merged back in request order. An owner learns the
//     topic on first use (it is created there with the controller's partition count and
//     configs).
//
// With one broker everything goes to it and no placement is recorded, unless learning is enabled.
//
// Brokers learned at run time (AddBroker, fed by the control plane, package mesh/meshctl) join
// the placement candidates; the controller never changes, as every gateway must agree on it
// without talking to each other. A broker that is forgotten (ForgetBroker: its digest expired)
// is no longer chosen for new placements, but its caller stays, so the partitions it owns stay
// reachable when it comes back: their data lives there.
type Cluster struct {
	dial         func(endpoint.NodeAddr) *brokermesh.Caller
	controllerID string
	log          *slog.Logger
	now          func() time.Time

	mu         sync.Mutex
	controller *Broker                      // guarded by mu (replaced when its addresses change); use ctl()
	ctlCallers map[*Broker]bool             // every caller the controller has had; guarded by mu
	brokers    []endpoint.NodeAddr          // placement candidates, sorted by NodeId; guarded by mu
	known      map[string]endpoint.NodeAddr // every broker ever known, by NodeId text; guarded by mu
	callers    map[string]*Broker           // by NodeId text, for every known broker; guarded by mu
	learning   bool                         // placements are recorded even with one broker; guarded by mu
	place      map[string]placement         // guarded by mu
	placeNext  int64                        // next placement-log offset to read; guarded by mu
	placeSafe  int64                        // placement-log offsets below this are known durable; guarded by mu
	hwm        map[tp]int64                 // last high watermark seen per partition; guarded by mu
	ensured    map[*Broker]map[string]bool  // topics known to exist on a data broker; guarded by mu

	// Quorum mode (quorum.go).
	mode      int                        // modeUnknown, modeLegacy or modeQuorum; guarded by mu
	members   map[string]bool            // the quorum's registered brokers, by NodeId text; guarded by mu
	qplace    map[string]quorumPlacement // the quorum's placements read so far; guarded by mu
	hints     map[tp]leaderHint          // leaders the brokers named, newer than qplace's (leader.go); guarded by mu
	hunts     map[tp]*hunt               // leader searches in flight (leader.go); guarded by mu
	preferred *Broker                    // the broker that last answered a controller op; guarded by mu
	seeds     map[string]bool            // the seeds' NodeId text; constant after New
	failedAt  map[*Broker]time.Time      // when a controller op last failed on a broker; guarded by mu
	// Liveness probes of a broker a call waits on (liveness.go): probeAfter, probeTimeout.
	probeAfter, probeTimeout time.Duration

	trustLearned bool // Learn's brokers were vetted by the caller (membership.go); guarded by mu

	// Offset commits carry (writer, the next commitSeq) so that a copy of a commit that a
	// broker delivers late never overwrites a newer one (OffsetCommit).
	writer    uint64        // random, not 0; constant after New
	commitSeq atomic.Uint64 // the last Seq given out
}

type tp struct {
	topic     string
	partition int32
}

// New builds a cluster view from broker seeds; dial makes the caller for one broker.
func New(seeds []endpoint.NodeAddr, dial func(endpoint.NodeAddr) *brokermesh.Caller, log *slog.Logger) (*Cluster, error) {
	if len(seeds) == 0 {
		return nil, errors.New("cluster: no brokers")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bs := append([]endpoint.NodeAddr(nil), seeds...)
	sort.Slice(bs, func(i, j int) bool { return bs[i].ID.String() < bs[j].ID.String() })
	c := &Cluster{dial: dial, brokers: bs, known: map[string]endpoint.NodeAddr{}, callers: map[string]*Broker{}, log: log, now: time.Now,
		place: map[string]placement{}, hwm: map[tp]int64{}, members: map[string]bool{}, qplace: map[string]quorumPlacement{}, seeds: map[string]bool{}, failedAt: map[*Broker]time.Time{},
		probeAfter: probeAfter, probeTimeout: probeTimeout, writer: newWriter()}
	for _, b := range bs {
		id := b.ID.String()
		if _, dup := c.callers[id]; dup {
			return nil, fmt.Errorf("cluster: broker %s listed twice", id)
		}
		c.callers[id] = NewBroker(dial(b))
		c.known[id] = b
		c.seeds[id] = true
	}
	c.controllerID = bs[0].ID.String()
	c.controller = c.callers[c.controllerID]
	c.ctlCallers = map[*Broker]bool{c.controller: true}
	return c, nil
}

// EnableLearning declares that brokers may be added at run time (AddBroker). Call it before the
// cluster serves: from then on placements are recorded even while the controller is the only
// known broker, so data written before other brokers are learned stays where it was written.
func (c *Cluster) EnableLearning() {
	c.mu.Lock()
	c.learning = true
	c.mu.Unlock()
}

// AddBroker makes a broker a placement candidate: a new one gets a caller (so new placements
// may use it, and partitions another gateway placed on it become reachable); a known one that
// was forgotten is a candidate again; a known one with new addresses gets a fresh caller that
// dials them (old and new addresses are kept). It reports whether anything changed. The
// controller stays the smallest NodeId among the seeds.
func (c *Cluster) AddBroker(a endpoint.NodeAddr) bool {
	if a.ID.IsZero() {
		return false
	}
	id := a.ID.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := false
	old, ok := c.known[id]
	switch {
	case !ok:
		c.known[id] = a
		c.callers[id] = NewBroker(c.dial(a))
		changed = true
		c.log.Info("learned broker", "broker", id, "addrs", a.Direct)
	case hasNewAddr(old, a):
		merged := endpoint.NodeAddr{ID: a.ID, RelayURL: a.RelayURL, Direct: append([]netip.AddrPort(nil), a.Direct...)}
		if merged.RelayURL == "" {
			merged.RelayURL = old.RelayURL
		}
		for _, d := range old.Direct {
			if !slices.Contains(merged.Direct, d) {
				merged.Direct = append(merged.Direct, d)
			}
		}
		c.known[id] = merged
		cl := NewBroker(c.dial(merged))
		c.callers[id] = cl
		if id == c.controllerID {
			c.controller = cl
			c.ctlCallers[cl] = true
		}
		changed = true
		c.log.Info("broker addresses changed", "broker", id, "addrs", merged.Direct)
	}
	i := sort.Search(len(c.brokers), func(i int) bool { return c.brokers[i].ID.String() >= id })
	if i < len(c.brokers) && c.brokers[i].ID == a.ID {
		c.brokers[i] = c.known[id]
		return changed
	}
	c.brokers = slices.Insert(c.brokers, i, c.known[id])
	return true
}

func hasNewAddr(old, a endpoint.NodeAddr) bool {
	if a.RelayURL != "" && a.RelayURL != old.RelayURL {
		return true
	}
	for _, d := range a.Direct {
		if !slices.Contains(old.Direct, d) {
			return true
		}
	}
	return false
}

// ForgetBroker stops choosing the broker for new placements (its digest expired). Existing
// placements on it stay, and so does its caller. The controller is never forgotten. It reports
// whether the broker was a candidate.
func (c *Cluster) ForgetBroker(id key.PublicKey) bool {
	s := id.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	if s == c.controllerID {
		return false
	}
	n := len(c.brokers)
	c.brokers = slices.DeleteFunc(c.brokers, func(b endpoint.NodeAddr) bool { return b.ID == id })
	if len(c.brokers) != n {
		c.log.Info("broker no longer chosen for new placements", "broker", s)
		return true
	}
	return false
}

// Learn applies a control-plane change (package mesh/meshctl): a broker that announces itself
// and is believed (a member: see membership.go) becomes a placement candidate, or gets its
// new addresses (AddBroker); one the gateway had found down (liveness.go) is reached on a new
// connection and used again at once. In legacy mode a broker whose digest expired gets no new
// placements (ForgetBroker) until it announces itself again; in quorum mode the quorum places
// partitions and keeps the members, and a digest's expiry changes nothing (the data path
// finds a dead broker by its probes). Changes about other roles are ignored. It reports
// whether a candidate was just forgotten.
func (c *Cluster) Learn(ch meshctl.Change) (forgotten bool) {
	if ch.Digest.Role != meshctl.RoleBroker {
		return false
	}
	switch ch.Kind {
	case meshctl.Up, meshctl.Updated:
		if !c.Believes(ch.Digest.Node) {
			return false // not a member (membership.go)
		}
		c.AddBroker(endpoint.NodeAddr{ID: ch.Digest.Node, Direct: ch.Digest.Addrs})
		c.mu.Lock()
		b := c.callers[ch.Digest.Node.String()]
		c.mu.Unlock()
		if b != nil && b.isDown() {
			// Back (restarted): its old connection is dead; the next call dials anew.
			b.caller.Reset("the broker announced itself again")
			c.heard(b)
		}
	case meshctl.Down:
		if c.quorumKnown() {
			return false
		}
		return c.ForgetBroker(ch.Digest.Node)
	}
	return false
}

// Brokers returns the current placement candidates, sorted by NodeId. The controller is always
// among them (it is the smallest NodeId of the seeds, not necessarily of all brokers).
func (c *Cluster) Brokers() []endpoint.NodeAddr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.brokers)
}

// Controller returns the controller's NodeId.
func (c *Cluster) Controller() string { return c.controllerID }

// single returns the one broker that holds everything, if there is just one: the controller
// with no other broker known (legacy mode), or the quorum's only registered broker.
func (c *Cluster) single(ctx context.Context) (*Broker, bool) {
	q, err := c.isQuorum(ctx)
	if err != nil {
		return nil, false // the split path reports the error
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if q {
		if len(c.members) != 1 {
			return nil, false
		}
		for id := range c.members {
			b, ok := c.callers[id]
			return b, ok
		}
	}
	if !c.learning && len(c.callers) == 1 {
		return c.controller, true
	}
	return nil, false
}

func (c *Cluster) ctl() *Broker {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.controller
}

// --- placement ---

// refreshPlacement reads new placement records from the controller, up to the point this
// gateway knows to be durable (see placementTopicConfigs in placement.go).
func (c *Cluster) refreshPlacement(ctx context.Context) error {
	c.mu.Lock()
	from := c.placeNext
	c.mu.Unlock()
	for {
		resp, err := c.ctl().Fetch(ctx, &brokerop.FetchReq{MaxBytes: 8 << 20, Partitions: []brokerop.FetchPartition{
			{Topic: PlacementTopic, Partition: 0, Offset: from, MaxBytes: 8 << 20}}})
		if err != nil {
			return err
		}
		p := resp.Partitions[0]
		if p.ErrorCode == errUnknownTopicOrPartition {
			return nil // nothing placed yet
		}
		if p.ErrorCode != 0 {
			return fmt.Errorf("placement log: kafka error %d", p.ErrorCode)
		}
		if len(p.Records) == 0 {
			return nil
		}
		c.mu.Lock()
		next, err := decodeRecords(p.Records, func(off int64, k, v []byte) {
			if off < c.placeNext || off >= c.placeSafe {
				return
			}
			pl, err := decodePlacement(v)
			if err != nil {
				c.log.Warn("placement log: bad record", "offset", off, "err", err)
				return
			}
			applyPlacement(c.place, string(k), pl)
		})
		next = min(next, c.placeSafe)
		moved := next > c.placeNext
		if moved {
			c.placeNext = next
		}
		from = c.placeNext
		c.mu.Unlock()
		if err != nil {
			return fmt.Errorf("placement log: %w", err)
		}
		if !moved {
			return nil // the rest is not known to be durable yet
		}
	}
}

// assign records a placement for topic covering its current partitions (extending an existing
// one) and returns the placement that won.
func (c *Cluster) assign(ctx context.Context, topic string) (placement, int16, error) {
	// The gateway's own routing lookup: no principal (the brokers check its role only).
	md, err := c.ctl().Metadata(brokerop.WithoutActing(ctx), &brokerop.MetadataReq{Topics: []string{topic}})
	if err != nil {
		return placement{}, 0, err
	}
	if len(md.Topics) != 1 || md.Topics[0].ErrorCode != 0 {
		code := errUnknownTopicOrPartition
		if len(md.Topics) == 1 {
			code = md.Topics[0].ErrorCode
		}
		return placement{}, code, nil
	}
	ti := md.Topics[0]
	id := topicIDHex(ti.TopicID)
	c.mu.Lock()
	cur, ok := c.place[topic]
	c.mu.Unlock()
	if ok && cur.TopicID == id && len(cur.Owners) >= len(ti.Partitions) {
		return cur, 0, nil
	}
	p := placement{TopicID: id}
	if ok && cur.TopicID == id {
		p.Owners = append(p.Owners, cur.Owners...)
	}
	c.mu.Lock()
	brokers := slices.Clone(c.brokers)
	c.mu.Unlock()
	h := fnv.New32a()
	h.Write([]byte(topic))
	start := int(h.Sum32() % uint32(len(brokers)))
	for i := len(p.Owners); i < len(ti.Partitions); i++ {
		p.Owners = append(p.Owners, brokers[(start+i)%len(brokers)].ID.String())
	}
	if _, err := c.ctl().CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{
		{Name: PlacementTopic, NumPartitions: 1, ReplicationFactor: 1, Configs: placementTopicConfigs}}}); err != nil {
		return placement{}, 0, err
	}
	pr, err := c.ctl().Produce(ctx, &brokerop.ProduceReq{Acks: -1, TimeoutMs: 10000, Partitions: []brokerop.ProducePartition{
		{Topic: PlacementTopic, Partition: 0, Records: encodeRecordBatch([]byte(topic), encodePlacement(p), c.now())}}})
	if err != nil {
		return placement{}, 0, err
	}
	if code := pr.Partitions[0].ErrorCode; code != 0 {
		return placement{}, 0, fmt.Errorf("placement log append: kafka error %d", code)
	}
	c.mu.Lock()
	c.placeSafe = max(c.placeSafe, pr.Partitions[0].BaseOffset+1) // acks=all: durable up to ours
	c.mu.Unlock()
	if err := c.refreshPlacement(ctx); err != nil {
		return placement{}, 0, err
	}
	c.mu.Lock()
	won := c.place[topic]
	c.mu.Unlock()
	return won, 0, nil
}

// owner returns the caller owning topic/partition, or a Kafka error code.
func (c *Cluster) owner(ctx context.Context, topic string, partition int32) (*Broker, string, int16, error) {
	return c.ownerAvoiding(ctx, topic, partition, nil)
}

// ownerAvoiding is owner for a retry after avoid answered NOT_LEADER_OR_FOLLOWER or failed:
// in quorum mode a replicated partition still routed to avoid has its leader searched
// (quorumOwner).
func (c *Cluster) ownerAvoiding(ctx context.Context, topic string, partition int32, avoid *Broker) (*Broker, string, int16, error) {
	if b, ok := c.single(ctx); ok {
		return b, "", 0, nil
	}
	if c.quorumKnown() {
		return c.quorumOwner(ctx, topic, partition, avoid)
	}
	lookup := func() (string, bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		p, ok := c.place[topic]
		if !ok || partition < 0 || int(partition) >= len(p.Owners) {
			return "", false
		}
		return p.Owners[partition], true
	}
	id, ok := lookup()
	if !ok {
		if err := c.refreshPlacement(ctx); err != nil {
			return nil, "", 0, err
		}
		if id, ok = lookup(); !ok {
			p, code, err := c.assign(ctx, topic)
			if err != nil || code != 0 {
				return nil, "", code, err
			}
			if partition < 0 || int(partition) >= len(p.Owners) {
				return nil, "", errUnknownTopicOrPartition, nil
			}
			id = p.Owners[partition]
		}
	}
	c.mu.Lock()
	cl, ok := c.callers[id]
	c.mu.Unlock()
	if !ok {
		c.log.Warn("partition owner is not among the configured brokers", "topic", topic, "partition", partition, "owner", id)
		return nil, "", errLeaderNotAvailable, nil
	}
	return cl, id, 0, nil
}

// ensureOnOwner creates topic on the owning broker with the controller's partition count and
// dynamic configs (or grows it there).
func (c *Cluster) ensureOnOwner(ctx context.Context, owner *Broker, topic string) error {
	c.mu.Lock()
	isCtl := c.ctlCallers[owner]
	c.mu.Unlock()
	if isCtl {
		return nil
	}
	md, err := c.ctl().Metadata(brokerop.WithoutActing(ctx), &brokerop.MetadataReq{Topics: []string{topic}})
	if err != nil {
		return err
	}
	if len(md.Topics) != 1 || md.Topics[0].ErrorCode != 0 {
		return nil
	}
	n := int32(len(md.Topics[0].Partitions))
	configs := map[string]string{}
	if dc, err := c.ctl().DescribeConfigs(ctx, &brokerop.DescribeConfigsReq{Resources: []brokerop.DescribeConfigsResource{
		{Type: 2, Name: topic}}}); err == nil && len(dc.Resources) == 1 {
		for _, e := range dc.Resources[0].Configs {
			if !e.IsDefault && e.Value != nil && !e.ReadOnly {
				configs[e.Name] = *e.Value
			}
		}
	}
	cr, err := owner.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{
		{Name: topic, NumPartitions: n, ReplicationFactor: 1, Configs: configs}}})
	if err != nil {
		return err
	}
	if len(cr.Topics) == 1 && cr.Topics[0].ErrorCode == errTopicAlreadyExists {
		_, err = owner.CreatePartitions(ctx, &brokerop.CreatePartitionsReq{Topics: []brokerop.CreatePartitionsTopic{{Name: topic, Count: n}}})
	}
	return err
}

// split groups request indexes by owner; failed maps index → Kafka error code. Owners are
// looked up one after another; partitions whose leader must be searched (quorumOwner) are
// then searched all at once, so one partition's election does not hold up the others'.
func (c *Cluster) split(ctx context.Context, n int, at func(i int) (string, int32)) (map[*Broker][]int, map[int]int16, error) {
	groups := map[*Broker][]int{}
	failed := map[int]int16{}
	var hunt []int
	fast := withNoHunt(ctx)
	for i := 0; i < n; i++ {
		topic, part := at(i)
		cl, _, code, err := c.owner(fast, topic, part)
		if err != nil {
			return nil, nil, err
		}
		switch code {
		case 0:
			groups[cl] = append(groups[cl], i)
		case codeHunt:
			hunt = append(hunt, i)
		default:
			failed[i] = code
		}
	}
	if len(hunt) == 0 {
		return groups, failed, nil
	}
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for _, i := range hunt {
		wg.Go(func() {
			topic, part := at(i)
			cl, _, code, err := c.owner(ctx, topic, part)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				if first == nil {
					first = err
				}
			case code != 0:
				failed[i] = code
			default:
				groups[cl] = append(groups[cl], i)
			}
		})
	}
	wg.Wait()
	if first != nil {
		return nil, nil, first
	}
	for _, idx := range groups {
		slices.Sort(idx) // request order within each owner
	}
	return groups, failed, nil
}

// fanout runs fn for each owner group concurrently; the first Go error wins.
func fanout(groups map[*Broker][]int, fn func(cl *Broker, idx []int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for cl, idx := range groups {
		wg.Go(func() {
			if err := fn(cl, idx); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// Produce splits the request by partition owner. Partitions of topics an owner does not know
// yet were not stored there: they are sent once more after the topic was created (splitCall).
func (c *Cluster) Produce(ctx context.Context, req *brokerop.ProduceReq) (*brokerop.ProduceResp, error) {
	if b, ok := c.single(ctx); ok {
		return b.Produce(ctx, req)
	}
	out := make([]brokerop.ProducePartitionResp, len(req.Partitions))
	err := splitCall(ctx, c, len(req.Partitions), func(i int) (string, int32) { return req.Partitions[i].Topic, req.Partitions[i].Partition }, out,
		func(i int, code int16) brokerop.ProducePartitionResp {
			return brokerop.ProducePartitionResp{Topic: req.Partitions[i].Topic, Partition: req.Partitions[i].Partition, ErrorCode: code, BaseOffset: -1, LogAppendTime: -1}
		}, false,
		func(ctx context.Context, cl *Broker, idx []int) ([]brokerop.ProducePartitionResp, error) {
			sub := &brokerop.ProduceReq{Acks: req.Acks, TimeoutMs: req.TimeoutMs, Partitions: make([]brokerop.ProducePartition, 0, len(idx))}
			for _, i := range idx {
				sub.Partitions = append(sub.Partitions, req.Partitions[i])
			}
			r, err := cl.Produce(ctx, sub)
			if err != nil {
				return nil, err
			}
			return r.Partitions, nil
		},
		func(r *brokerop.ProducePartitionResp) int16 { return r.ErrorCode })
	if err != nil {
		return nil, err
	}
	return &brokerop.ProduceResp{Partitions: out}, nil
}

// ProduceStaged is Produce for a pipelining gateway: the split by owner and the sends happen
// before it returns, in call order (each owner appends in the order it receives), and the
// returned function waits for the answers. A topic is created on a data broker before its
// first send there, since the request's records may not be kept for a resend; should an owner
// still not know the topic, that partition answers UNKNOWN_TOPIC_OR_PARTITION and the client
// retries.
func (c *Cluster) ProduceStaged(ctx context.Context, req *brokerop.ProduceReq) func() (*brokerop.ProduceResp, error) {
	if b, ok := c.single(ctx); ok {
		return b.ProduceStaged(ctx, req)
	}
	fail := func(err error) func() (*brokerop.ProduceResp, error) {
		return func() (*brokerop.ProduceResp, error) { return nil, err }
	}
	groups, failed, err := c.split(ctx, len(req.Partitions), func(i int) (string, int32) { return req.Partitions[i].Topic, req.Partitions[i].Partition })
	if err != nil {
		return fail(err)
	}
	for cl, idx := range groups {
		if c.quorumKnown() {
			break // owners learn their topics from the quorum
		}
		for _, i := range idx {
			if err := c.ensureOnce(ctx, cl, req.Partitions[i].Topic); err != nil {
				return fail(err)
			}
		}
	}
	type sent struct {
		cl   *Broker
		idx  []int
		wait func() (*brokerop.ProduceResp, error)
	}
	var waits []sent
	for cl, idx := range groups {
		sub := &brokerop.ProduceReq{Acks: req.Acks, TimeoutMs: req.TimeoutMs}
		for _, i := range idx {
			sub.Partitions = append(sub.Partitions, req.Partitions[i])
		}
		waits = append(waits, sent{cl, idx, c.stageWatched(ctx, cl, sub)})
	}
	n := len(req.Partitions)
	topics := make([]brokerop.ProducePartitionResp, n)
	for i := range req.Partitions {
		topics[i] = brokerop.ProducePartitionResp{Topic: req.Partitions[i].Topic, Partition: req.Partitions[i].Partition, BaseOffset: -1, LogAppendTime: -1}
	}
	for i, code := range failed {
		topics[i].ErrorCode = code
	}
	return func() (*brokerop.ProduceResp, error) {
		var first error
		for _, w := range waits {
			r, err := w.wait()
			if err == nil && len(r.Partitions) != len(w.idx) {
				err = fmt.Errorf("kafkaop produce: %d answers for %d partitions", len(r.Partitions), len(w.idx))
			}
			if err != nil {
				if first == nil {
					first = err
				}
				if c.quorumKnown() {
					c.forgetAllPlacements() // the owner may be gone and its partitions placed again
				}
				continue
			}
			for j, i := range w.idx {
				topics[i] = r.Partitions[j]
				switch r.Partitions[j].ErrorCode {
				case errUnknownTopicOrPartition:
					c.forgetEnsured(w.cl, r.Partitions[j].Topic)
					c.forgetPlacement(r.Partitions[j].Topic)
				case errNotLeaderOrFollower:
					// Not retried here (a resend could overtake produces pipelined behind
					// it): the next request reads the placement again (and searches for
					// the leader if the placement still names this broker), and the
					// client retries.
					c.missed(r.Partitions[j].Topic, r.Partitions[j].Partition, w.cl)
				}
			}
		}
		if first != nil {
			return nil, first
		}
		return &brokerop.ProduceResp{Partitions: topics}, nil
	}
}

// stageWatched is cl.ProduceStaged watched as any call (liveness.go): the produce is sent
// now, and the returned wait fails with brokermesh.ErrUnavailable as soon as cl fails a
// liveness probe, instead of waiting for the connection's idle timeout.
func (c *Cluster) stageWatched(ctx context.Context, cl *Broker, req *brokerop.ProduceReq) func() (*brokerop.ProduceResp, error) {
	actx, cancel := context.WithCancel(ctx)
	stop := c.watchCall(actx, cl, cancel)
	wait := cl.ProduceStaged(actx, req)
	return func() (*brokerop.ProduceResp, error) {
		r, err := wait()
		dead := stop()
		cancel()
		if dead != nil && err != nil && ctx.Err() == nil {
			return nil, unavailable(cl, c.probeTimeout, dead)
		}
		if err == nil {
			c.heard(cl)
		}
		return r, err
	}
}

// ensureOnce runs ensureOnOwner the first time topic is sent to owner by this gateway.
func (c *Cluster) ensureOnce(ctx context.Context, owner *Broker, topic string) error {
	c.mu.Lock()
	done := c.ensured[owner][topic]
	c.mu.Unlock()
	if done {
		return nil
	}
	if err := c.ensureOnOwner(ctx, owner, topic); err != nil {
		return err
	}
	c.mu.Lock()
	if c.ensured == nil {
		c.ensured = map[*Broker]map[string]bool{}
	}
	if c.ensured[owner] == nil {
		c.ensured[owner] = map[string]bool{}
	}
	c.ensured[owner][topic] = true
	c.mu.Unlock()
	return nil
}

func (c *Cluster) forgetEnsured(owner *Broker, topic string) {
	c.mu.Lock()
	delete(c.ensured[owner], topic)
	c.mu.Unlock()
}

// splitCall is the split-call-merge of the partition ops (Produce, Fetch, ListOffsets): the
// n entries of a request (entry gives each one's topic and partition) are grouped by owner; an
// entry without an owner is answered failed(i, code) at once; every owner is called
// concurrently with its entries' request indexes (callOwner), and the answers land in out at
// those indexes. The first Go error wins. resend says whether entries whose owner failed
// (it stopped answering: liveness.go) may be sent again elsewhere: true for reads, false
// for Produce, whose outcome is then unknown and which the client retries itself.
func splitCall[A any](ctx context.Context, c *Cluster, n int, entry func(i int) (string, int32), out []A,
	failed func(i int, code int16) A, resend bool, call func(ctx context.Context, cl *Broker, idx []int) ([]A, error), code func(*A) int16) error {
	groups, fails, err := c.split(ctx, n, entry)
	if err != nil {
		return err
	}
	for i, code := range fails {
		out[i] = failed(i, code)
	}
	if !resend {
		failed = nil
	}
	return fanout(groups, func(cl *Broker, idx []int) error { return callOwner(ctx, c, cl, idx, entry, out, failed, call, code) })
}

// callOwner calls one owner with the entries idx (call answers them in idx's order, watched:
// liveness.go) and puts the answers in out. An entry answered UNKNOWN_TOPIC_OR_PARTITION (a
// topic the owner has not learned yet: nothing was stored or read) is sent once more, alone
// with the others like it, after its topic was created on the owner with the controller's
// partition count and configs. In quorum mode an entry answered NOT_LEADER_OR_FOLLOWER (a
// replicated partition whose leader moved) is sent once more, to the leader the quorum or
// the brokers now name (retryNotLeader); a second such answer goes to the client, which
// refreshes its metadata and retries. With failed set (reads), entries whose owner stopped
// answering are sent once more the same way, or answered failed(i, code) when no leader is
// found.
func callOwner[A any](ctx context.Context, c *Cluster, cl *Broker, idx []int, entry func(i int) (string, int32), out []A,
	failed func(i int, code int16) A, call func(ctx context.Context, cl *Broker, idx []int) ([]A, error), code func(*A) int16) error {
	var notLeader []int
	for attempt := 0; len(idx) > 0; attempt++ {
		r, err := watched(ctx, c, cl, func(ctx context.Context) ([]A, error) { return call(ctx, cl, idx) })
		if err != nil {
			if failed == nil || !cl.isDown() || ctx.Err() != nil || !c.quorumKnown() {
				return err
			}
			for _, i := range idx {
				out[i] = failed(i, errNotLeaderOrFollower)
			}
			return retryNotLeader(ctx, c, cl, idx, entry, out, failed, call, code)
		}
		if len(r) != len(idx) {
			return fmt.Errorf("kafkaop: %d answers for %d partitions", len(r), len(idx))
		}
		var again []int
		seen := map[string]bool{}
		for j, i := range idx {
			out[i] = r[j]
			if attempt == 0 && code(&r[j]) == errNotLeaderOrFollower && c.quorumKnown() {
				notLeader = append(notLeader, i)
				continue
			}
			if attempt > 0 || code(&r[j]) != errUnknownTopicOrPartition {
				continue
			}
			t, _ := entry(i)
			if c.quorumKnown() {
				// The owner has not applied the topic yet, or it was placed elsewhere:
				// read the placement again next time; the client retries.
				c.forgetPlacement(t)
				continue
			}
			again = append(again, i)
			if !seen[t] {
				seen[t] = true
				if err := c.ensureOnOwner(ctx, cl, t); err != nil {
					return err
				}
			}
		}
		idx = again
	}
	if len(notLeader) > 0 {
		return retryNotLeader(ctx, c, cl, notLeader, entry, out, nil, call, code)
	}
	return nil
}

// retryNotLeader sends entries that from answered NOT_LEADER_OR_FOLLOWER (or, with failed
// set, that from failed to answer) once more: their topics' placements are read again from
// the quorum, and each entry goes to the leader it now names, or, while that is still from
// or down, to the leader the brokers name (quorumOwner, leader.go). Whatever the answer, it
// is the one the client gets; after a second NOT_LEADER_OR_FOLLOWER the placement is dropped
// again, so the client's retry reads it afresh. Entries with no leader found keep their first
// answer.
func retryNotLeader[A any](ctx context.Context, c *Cluster, from *Broker, idx []int, entry func(i int) (string, int32), out []A,
	failed func(i int, code int16) A, call func(ctx context.Context, cl *Broker, idx []int) ([]A, error), code func(*A) int16) error {
	for _, i := range idx {
		t, p := entry(i)
		c.missed(t, p, from)
	}
	groups := map[*Broker][]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, i := range idx {
		wg.Go(func() {
			t, p := entry(i)
			cl, _, code, err := c.ownerAvoiding(ctx, t, p, from)
			if err != nil || code != 0 {
				c.missed(t, p, from) // the first answer stands; the next request reads the placement afresh
				return
			}
			mu.Lock()
			groups[cl] = append(groups[cl], i)
			mu.Unlock()
		})
	}
	wg.Wait()
	return fanout(groups, func(cl *Broker, idx []int) error {
		slices.Sort(idx)
		r, err := watched(ctx, c, cl, func(ctx context.Context) ([]A, error) { return call(ctx, cl, idx) })
		if err != nil {
			if failed != nil && cl.isDown() && ctx.Err() == nil {
				return nil // the first answer stands (NOT_LEADER_OR_FOLLOWER)
			}
			return err
		}
		if len(r) != len(idx) {
			return fmt.Errorf("kafkaop: %d answers for %d partitions", len(r), len(idx))
		}
		mu.Lock()
		for j, i := range idx {
			out[i] = r[j]
			if code(&r[j]) == errNotLeaderOrFollower {
				t, p := entry(i)
				c.missed(t, p, cl)
			}
		}
		mu.Unlock()
		return nil
	})
}

// Fetch splits the request by owner in two phases. First every owner is asked at once with no
// wait; if that yields data (or the client asked for no wait) it is the answer. Otherwise every
// owner long-polls, and the first owner to return data ends the others' polls (they had nothing
// a moment ago), so data on one broker is never held up by a long poll on another, and no
// broker is starved by a faster one.
func (c *Cluster) Fetch(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, error) {
	if b, ok := c.single(ctx); ok {
		return b.Fetch(ctx, req)
	}
	// The owners' answers may live in pooled payloads; never giving them back is safe (they
	// are garbage collected instead of reused).
	resp, _, err := c.fetchSplit(ctx, req)
	return resp, err
}

// fetchLeaderWait bounds a Fetch's wait for a partition's new leader by its own MaxWaitMs.
func fetchLeaderWait(ctx context.Context, req *brokerop.FetchReq) context.Context {
	return withLeaderWait(ctx, min(leaderWait, time.Duration(max(req.MaxWaitMs, 0))*time.Millisecond))
}

// FetchPooled is Fetch whose answer may live in reused memory until release is called
// (brokerop.Service): the brokers' answer frames themselves, read ahead for sequential
// consumers (Caller.FetchPooled), with one broker or several.
func (c *Cluster) FetchPooled(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, func(), error) {
	if b, ok := c.single(ctx); ok {
		return b.FetchPooled(ctx, req)
	}
	return c.fetchSplit(ctx, req)
}

// fetchSplit is Fetch over several owners; release gives back every owner answer's payload.
func (c *Cluster) fetchSplit(ctx context.Context, req *brokerop.FetchReq) (_ *brokerop.FetchResp, release func(), err error) {
	var releases []func() // appended under fetchPhase's lock, used after it returned
	releaseAll := func() {
		for _, f := range releases {
			f()
		}
		releases = nil
	}
	defer func() {
		if err != nil {
			releaseAll() // not release: an error return has just set it to nil
		}
	}()
	ctx = fetchLeaderWait(ctx, req)
	groups, failed, err := c.split(ctx, len(req.Partitions), func(i int) (string, int32) { return req.Partitions[i].Topic, req.Partitions[i].Partition })
	if err != nil {
		return nil, nil, err
	}
	out := make([]brokerop.FetchPartitionResp, len(req.Partitions))
	filled := make([]bool, len(req.Partitions))
	for i, code := range failed {
		out[i] = brokerop.FetchPartitionResp{Topic: req.Partitions[i].Topic, Partition: req.Partitions[i].Partition, ErrorCode: code, HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1}
		filled[i] = true
	}
	bytes, err := c.fetchPhase(ctx, req, groups, 0, out, filled, false, &releases)
	if err != nil {
		return nil, nil, err
	}
	if bytes == 0 && req.MaxWaitMs > 0 && ctx.Err() == nil {
		if _, err := c.fetchPhase(ctx, req, groups, req.MaxWaitMs, out, filled, true, &releases); err != nil {
			return nil, nil, err
		}
	}
	c.mu.Lock()
	for i := range out {
		k := tp{req.Partitions[i].Topic, req.Partitions[i].Partition}
		if filled[i] {
			if out[i].ErrorCode == 0 {
				c.hwm[k] = out[i].HighWatermark
			}
			continue
		}
		hw, ok := c.hwm[k]
		if !ok {
			hw = req.Partitions[i].Offset
		}
		out[i] = brokerop.FetchPartitionResp{Topic: k.topic, Partition: k.partition, HighWatermark: hw, LastStableOffset: hw, LogStartOffset: -1}
	}
	c.mu.Unlock()
	return &brokerop.FetchResp{Partitions: out}, releaseAll, nil
}

// fetchPhase asks every owner group with the given wait and fills out; with cancelOnData the
// first group to return records cancels the rest. It returns the record bytes received and
// adds each answer's release to releases.
func (c *Cluster) fetchPhase(ctx context.Context, req *brokerop.FetchReq, groups map[*Broker][]int, waitMs int32,
	out []brokerop.FetchPartitionResp, filled []bool, cancelOnData bool, releases *[]func()) (int, error) {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	total := 0
	entry := func(i int) (string, int32) { return req.Partitions[i].Topic, req.Partitions[i].Partition }
	err := fanout(groups, func(cl *Broker, idx []int) error {
		failed := func(i int, code int16) brokerop.FetchPartitionResp {
			return brokerop.FetchPartitionResp{Topic: req.Partitions[i].Topic, Partition: req.Partitions[i].Partition, ErrorCode: code, HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1}
		}
		err := callOwner(fctx, c, cl, idx, entry, out, failed, func(ctx context.Context, cl *Broker, idx []int) ([]brokerop.FetchPartitionResp, error) {
			sub := &brokerop.FetchReq{MaxWaitMs: waitMs, MinBytes: req.MinBytes, MaxBytes: req.MaxBytes, IsolationLevel: req.IsolationLevel,
				Partitions: make([]brokerop.FetchPartition, 0, len(idx))}
			if waitMs == 0 {
				sub.MinBytes = 0
			}
			for _, i := range idx {
				sub.Partitions = append(sub.Partitions, req.Partitions[i])
			}
			r, rel, err := cl.FetchPooled(ctx, sub)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			*releases = append(*releases, rel)
			mu.Unlock()
			return r.Partitions, nil
		}, func(r *brokerop.FetchPartitionResp) int16 { return r.ErrorCode })
		if err != nil {
			if fctx.Err() != nil && ctx.Err() == nil {
				return nil // cancelled because another owner had data
			}
			return err
		}
		n := 0
		mu.Lock()
		for _, i := range idx {
			filled[i] = true
			n += len(out[i].Records)
		}
		total += n
		mu.Unlock()
		if n > 0 && cancelOnData {
			cancel()
		}
		return nil
	})
	return total, err
}

// ListOffsets splits the request by owner.
func (c *Cluster) ListOffsets(ctx context.Context, req *brokerop.ListOffsetsReq) (*brokerop.ListOffsetsResp, error) {
	if b, ok := c.single(ctx); ok {
		return b.ListOffsets(ctx, req)
	}
	out := make([]brokerop.ListOffsetsPartitionResp, len(req.Partitions))
	err := splitCall(ctx, c, len(req.Partitions), func(i int) (string, int32) { return req.Partitions[i].Topic, req.Partitions[i].Partition }, out,
		func(i int, code int16) brokerop.ListOffsetsPartitionResp {
			return brokerop.ListOffsetsPartitionResp{Topic: req.Partitions[i].Topic, Partition: req.Partitions[i].Partition, ErrorCode: code, Timestamp: -1, Offset: -1}
		}, true,
		func(ctx context.Context, cl *Broker, idx []int) ([]brokerop.ListOffsetsPartitionResp, error) {
			sub := &brokerop.ListOffsetsReq{IsolationLevel: req.IsolationLevel, Partitions: make([]brokerop.ListOffsetsPartition, 0, len(idx))}
			for _, i := range idx {
				sub.Partitions = append(sub.Partitions, req.Partitions[i])
			}
			r, err := cl.ListOffsets(ctx, sub)
			if err != nil {
				return nil, err
			}
			return r.Partitions, nil
		},
		func(r *brokerop.ListOffsetsPartitionResp) int16 { return r.ErrorCode })
	if err != nil {
		return nil, err
	}
	return &brokerop.ListOffsetsResp{Partitions: out}, nil
}

// Metadata asks the controller (in quorum mode any broker, which forwards to the quorum
// leader) and hides the legacy placement topic from listings.
func (c *Cluster) Metadata(ctx context.Context, req *brokerop.MetadataReq) (*brokerop.MetadataResp, error) {
	r, err := ctlDo(ctx, c, false, req, (*Broker).Metadata)
	if err != nil {
		return r, err
	}
	c.overlayHints(r)
	if req.Topics != nil {
		return r, nil
	}
	kept := r.Topics[:0]
	for _, t := range r.Topics {
		if t.Name != PlacementTopic {
			kept = append(kept, t)
		}
	}
	r.Topics = kept
	return r, nil
}

// overlayHints shows, for each partition whose leader the gateway learned from the brokers
// under a newer epoch than the quorum has recorded (leader.go), that leader and epoch: the
// client's next Fetch or ListOffsets then carries the epoch of the leader it is routed to,
// rather than being fenced (FENCED_LEADER_EPOCH) until the quorum catches up.
func (c *Cluster) overlayHints(r *brokerop.MetadataResp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.hints) == 0 {
		return
	}
	kafkaID := make(map[string]int32, len(r.Brokers))
	for _, b := range r.Brokers {
		kafkaID[b.MeshID] = b.NodeID
	}
	for ti := range r.Topics {
		t := &r.Topics[ti]
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			h, ok := c.hints[tp{t.Name, p.Partition}]
			if !ok || h.topicID != t.TopicID || h.epoch <= p.LeaderEpoch || len(p.Replicas) == 0 {
				continue
			}
			if id, ok := kafkaID[h.id]; ok && slices.Contains(p.Replicas, id) {
				p.Leader, p.LeaderEpoch = id, h.epoch
			}
		}
	}
}

// CreateTopics creates on the controller (the registry; in quorum mode the leader also
// places the partitions, and owners learn the topics by applying them); in legacy mode
// owners learn topics on first use.
func (c *Cluster) CreateTopics(ctx context.Context, req *brokerop.CreateTopicsReq) (*brokerop.CreateTopicsResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).CreateTopics)
}

// DeleteTopics deletes on the controller. In quorum mode every broker drops the data when it
// applies the deletion; in legacy mode the topic's data is then purged on every other broker.
func (c *Cluster) DeleteTopics(ctx context.Context, req *brokerop.DeleteTopicsReq) (*brokerop.DeleteTopicsResp, error) {
	r, err := ctlDo(ctx, c, false, req, (*Broker).DeleteTopics)
	if err != nil {
		return r, err
	}
	for _, t := range req.Topics {
		c.forgetPlacement(t)
	}
	if _, single := c.single(ctx); single || c.quorumKnown() {
		return r, nil
	}
	var purge []string
	for _, t := range r.Topics {
		if t.ErrorCode == 0 {
			purge = append(purge, t.Name)
		}
	}
	if len(purge) > 0 {
		_ = fanout(c.others(), func(cl *Broker, _ []int) error {
			if _, err := cl.DeleteTopics(ctx, &brokerop.DeleteTopicsReq{Topics: purge}); err != nil {
				c.log.Warn("delete topics on a data broker failed; its partitions stay until retried", "err", err)
			}
			return nil
		})
	}
	return r, nil
}

func (c *Cluster) others() map[*Broker][]int {
	m := map[*Broker][]int{}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, cl := range c.callers {
		if id != c.controllerID {
			m[cl] = nil
		}
	}
	return m
}

// CreatePartitions grows topics on the controller (in quorum mode the leader places the new
// partitions; in legacy mode placement extends on first use).
func (c *Cluster) CreatePartitions(ctx context.Context, req *brokerop.CreatePartitionsReq) (*brokerop.CreatePartitionsResp, error) {
	r, err := ctlDo(ctx, c, false, req, (*Broker).CreatePartitions)
	if err == nil {
		for _, t := range req.Topics {
			c.forgetPlacement(t.Name)
		}
	}
	return r, err
}

// DescribeConfigs asks the controller.
func (c *Cluster) DescribeConfigs(ctx context.Context, req *brokerop.DescribeConfigsReq) (*brokerop.DescribeConfigsResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).DescribeConfigs)
}

// fanoutConfigs, in legacy mode, repeats a config change on every data broker's copy of the
// registry (in quorum mode every broker applies it from the quorum).
func (c *Cluster) fanoutConfigs(ctx context.Context, validateOnly bool, fn func(*Broker)) {
	if _, single := c.single(ctx); validateOnly || single || c.quorumKnown() {
		return
	}
	_ = fanout(c.others(), func(cl *Broker, _ []int) error { fn(cl); return nil })
}

// AlterConfigs changes the controller's registry (and, in legacy mode, every data broker's copy).
func (c *Cluster) AlterConfigs(ctx context.Context, req *brokerop.AlterConfigsReq) (*brokerop.AlterConfigsResp, error) {
	r, err := ctlDo(ctx, c, false, req, (*Broker).AlterConfigs)
	if err == nil {
		c.fanoutConfigs(ctx, req.ValidateOnly, func(cl *Broker) { _, _ = cl.AlterConfigs(ctx, req) })
	}
	return r, err
}

// IncrementalAlterConfigs changes the controller's registry (and, in legacy mode, every data
// broker's copy).
func (c *Cluster) IncrementalAlterConfigs(ctx context.Context, req *brokerop.IncrementalAlterConfigsReq) (*brokerop.AlterConfigsResp, error) {
	r, err := ctlDo(ctx, c, false, req, (*Broker).IncrementalAlterConfigs)
	if err == nil {
		c.fanoutConfigs(ctx, req.ValidateOnly, func(cl *Broker) { _, _ = cl.IncrementalAlterConfigs(ctx, req) })
	}
	return r, err
}

// DescribeCluster asks the controller.
func (c *Cluster) DescribeCluster(ctx context.Context, req *brokerop.DescribeClusterReq) (*brokerop.DescribeClusterResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).DescribeCluster)
}

// Group ops all go to the controller, which runs the group coordinator (in quorum mode: any
// broker, which forwards to the quorum leader).

func (c *Cluster) JoinGroup(ctx context.Context, req *brokerop.JoinGroupReq) (*brokerop.JoinGroupResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).JoinGroup)
}

func (c *Cluster) SyncGroup(ctx context.Context, req *brokerop.SyncGroupReq) (*brokerop.SyncGroupResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).SyncGroup)
}

func (c *Cluster) Heartbeat(ctx context.Context, req *brokerop.HeartbeatReq) (*brokerop.HeartbeatResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).Heartbeat)
}

func (c *Cluster) LeaveGroup(ctx context.Context, req *brokerop.LeaveGroupReq) (*brokerop.LeaveGroupResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).LeaveGroup)
}

// OffsetCommit stamps the commit with this gateway's writer id and the next sequence
// number (brokerop.OffsetCommitReq Writer, Seq) before it goes to a broker. ctlDo sends it
// again, with the same stamp, to another broker when the first stops answering its probes;
// the first may still hold the commit (forwarding it to the quorum leader while cut off) and
// deliver it after a newer commit of the same partition was acknowledged. The coordinator
// then finds the partition's offset written under a higher Seq of this writer and leaves it:
// a committed offset never goes back to a commit its client had already overtaken. (Kafka's
// coordinator applies a connection's commits in arrival order; here one commit may arrive
// by two brokers.) Commits through different gateways are not ordered against each other.
func (c *Cluster) OffsetCommit(ctx context.Context, req *brokerop.OffsetCommitReq) (*brokerop.OffsetCommitResp, error) {
	stamped := *req
	stamped.Writer, stamped.Seq = c.writer, c.commitSeq.Add(1)
	return ctlDo(ctx, c, false, &stamped, (*Broker).OffsetCommit)
}

// newWriter is a gateway's random writer id for its offset commits (never 0: unstamped).
func newWriter() uint64 {
	for {
		if w := rand.Uint64(); w != 0 {
			return w
		}
	}
}

func (c *Cluster) OffsetFetch(ctx context.Context, req *brokerop.OffsetFetchReq) (*brokerop.OffsetFetchResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).OffsetFetch)
}

func (c *Cluster) ListGroups(ctx context.Context, req *brokerop.ListGroupsReq) (*brokerop.ListGroupsResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).ListGroups)
}

func (c *Cluster) DescribeGroups(ctx context.Context, req *brokerop.DescribeGroupsReq) (*brokerop.DescribeGroupsResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).DescribeGroups)
}

func (c *Cluster) DeleteGroups(ctx context.Context, req *brokerop.DeleteGroupsReq) (*brokerop.DeleteGroupsResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).DeleteGroups)
}

func (c *Cluster) OffsetDelete(ctx context.Context, req *brokerop.OffsetDeleteReq) (*brokerop.OffsetDeleteResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).OffsetDelete)
}

var _ brokerop.Service = (*Cluster)(nil)
