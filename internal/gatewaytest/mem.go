package gatewaytest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/kafkawire"
)

// MemBackend is an in-memory gateway.Backend serving the data ops and Metadata,
// CreateTopics and DeleteTopics; every other op answers brokerop.ErrUnsupported. The zero
// value is not usable; use NewMem.
type MemBackend struct {
	brokerop.Unimplemented
	defaultPartitions int32
	// Clock times Fetch's MaxWaitMs. Nil: the wall clock. Set it before the first call.
	Clock clock.Clock

	mu      sync.Mutex
	topics  map[string]*memTopic // guarded by mu
	changed chan struct{}        // closed and replaced on every append; guarded by mu
	calls   map[string]int       // op name -> count; guarded by mu
	fail    error                // returned by every op while set; guarded by mu
}

type memTopic struct {
	id    [16]byte
	parts []*memPart
}

type memPart struct {
	batches [][]byte // stored batches, base offset rewritten
	bases   []int64
	maxTS   []int64
	next    int64
}

// NewMem returns an empty backend that auto-creates topics with partitions partitions.
func NewMem(partitions int32) *MemBackend {
	if partitions <= 0 {
		partitions = 1
	}
	return &MemBackend{defaultPartitions: partitions, topics: map[string]*memTopic{}, changed: make(chan struct{}), calls: map[string]int{}}
}

// Fail makes every later op return err (nil restores normal operation).
func (m *MemBackend) Fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

// Calls returns how many times the op with this name (e.g. "Produce") was called.
func (m *MemBackend) Calls(op string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[op]
}

// lock takes m.mu and counts a call of op. If the backend is set to fail it releases m.mu
// and returns the error; otherwise the caller holds m.mu and unlocks it.
func (m *MemBackend) lock(op string) error {
	m.mu.Lock()
	m.calls[op]++
	if m.fail != nil {
		m.mu.Unlock()
		return m.fail
	}
	return nil
}

func (m *MemBackend) create(name string, n int32) *memTopic {
	t := &memTopic{parts: make([]*memPart, n)}
	rand.Read(t.id[:])
	for i := range t.parts {
		t.parts[i] = &memPart{}
	}
	m.topics[name] = t
	return t
}

func (m *MemBackend) part(topic string, p int32) *memPart {
	t := m.topics[topic]
	if t == nil || p < 0 || int(p) >= len(t.parts) {
		return nil
	}
	return t.parts[p]
}

// Produce appends every v2 batch of each partition; malformed input is CORRUPT_MESSAGE and
// stores nothing for that partition.
func (m *MemBackend) Produce(_ context.Context, req *brokerop.ProduceReq) (*brokerop.ProduceResp, error) {
	if err := m.lock("Produce"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	resp := &brokerop.ProduceResp{Partitions: make([]brokerop.ProducePartitionResp, len(req.Partitions))}
	appended := false
	for i, pp := range req.Partitions {
		r := &resp.Partitions[i]
		r.Topic, r.Partition, r.BaseOffset, r.LogAppendTime = pp.Topic, pp.Partition, -1, -1
		part := m.part(pp.Topic, pp.Partition)
		if part == nil {
			r.ErrorCode = kafkawire.ErrUnknownTopicOrPartition
			continue
		}
		batches, ok := splitBatches(pp.Records)
		if !ok {
			r.ErrorCode = kafkawire.ErrCorruptMessage
			continue
		}
		r.BaseOffset = part.next
		for _, b := range batches {
			cp := append([]byte(nil), b...)
			binary.BigEndian.PutUint64(cp, uint64(part.next))
			part.batches = append(part.batches, cp)
			part.bases = append(part.bases, part.next)
			part.maxTS = append(part.maxTS, int64(binary.BigEndian.Uint64(cp[43:])))
			part.next += int64(binary.BigEndian.Uint32(cp[23:])) + 1
		}
		appended = true
	}
	if appended {
		close(m.changed)
		m.changed = make(chan struct{})
	}
	return resp, nil
}

// splitBatches cuts records into v2 batches (a batch's length field counts the bytes after
// it; the magic byte is at 16).
func splitBatches(b []byte) ([][]byte, bool) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 61 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint32(b[8:])) + 12
		if n < 61 || n > len(b) || b[16] != 2 {
			return nil, false
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out, len(out) > 0
}

// Fetch returns whole batches from the one holding the fetch offset, waiting up to
// MaxWaitMs for MinBytes.
func (m *MemBackend) Fetch(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, error) {
	clk := clock.Or(m.Clock)
	deadline := clk.Now().Add(time.Duration(req.MaxWaitMs) * time.Millisecond)
	for {
		if err := m.lock("Fetch"); err != nil {
			return nil, err
		}
		resp, size := m.fetchLocked(req)
		changed := m.changed
		m.mu.Unlock()
		wait := clock.Until(clk, deadline)
		if size >= int(req.MinBytes) || wait <= 0 {
			return resp, nil
		}
		t := clk.NewTimer(wait)
		select {
		case <-changed:
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return resp, nil
		}
		t.Stop()
	}
}

// ProduceStaged is Produce, called at once (MemBackend does not pipeline).
func (m *MemBackend) ProduceStaged(ctx context.Context, req *brokerop.ProduceReq) func() (*brokerop.ProduceResp, error) {
	return brokerop.ProduceNow(ctx, m.Produce, req)
}

// FetchPooled is Fetch (MemBackend's answers live in their own memory).
func (m *MemBackend) FetchPooled(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, func(), error) {
	return brokerop.FetchUnpooled(ctx, m.Fetch, req)
}

func (m *MemBackend) fetchLocked(req *brokerop.FetchReq) (*brokerop.FetchResp, int) {
	resp := &brokerop.FetchResp{Partitions: make([]brokerop.FetchPartitionResp, len(req.Partitions))}
	total := 0
	for i, fp := range req.Partitions {
		r := &resp.Partitions[i]
		r.Topic, r.Partition = fp.Topic, fp.Partition
		part := m.part(fp.Topic, fp.Partition)
		if part == nil {
			r.ErrorCode, r.HighWatermark, r.LastStableOffset, r.LogStartOffset = kafkawire.ErrUnknownTopicOrPartition, -1, -1, -1
			continue
		}
		r.HighWatermark, r.LastStableOffset = part.next, part.next
		if fp.Offset < 0 || fp.Offset > part.next {
			r.ErrorCode = kafkawire.ErrOffsetOutOfRange
			continue
		}
		for j, b := range part.batches {
			last := part.bases[j] + int64(binary.BigEndian.Uint32(b[23:]))
			if last < fp.Offset {
				continue
			}
			if len(r.Records) > 0 && (len(r.Records)+len(b) > int(fp.MaxBytes) || total+len(b) > int(req.MaxBytes)) {
				break
			}
			if len(r.Records) == 0 && total > 0 && total+len(b) > int(req.MaxBytes) {
				break
			}
			r.Records = append(r.Records, b...)
			total += len(b)
		}
	}
	return resp, total
}

// ListOffsets answers earliest (-2), latest (-1) and timestamp lookups.
func (m *MemBackend) ListOffsets(_ context.Context, req *brokerop.ListOffsetsReq) (*brokerop.ListOffsetsResp, error) {
	if err := m.lock("ListOffsets"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	resp := &brokerop.ListOffsetsResp{Partitions: make([]brokerop.ListOffsetsPartitionResp, len(req.Partitions))}
	for i, lp := range req.Partitions {
		r := &resp.Partitions[i]
		r.Topic, r.Partition, r.Timestamp, r.Offset = lp.Topic, lp.Partition, -1, -1
		part := m.part(lp.Topic, lp.Partition)
		switch {
		case part == nil:
			r.ErrorCode = kafkawire.ErrUnknownTopicOrPartition
		case lp.Timestamp == -2:
			r.Offset = 0
		case lp.Timestamp == -1:
			r.Offset = part.next
		default:
			for j, ts := range part.maxTS {
				if ts >= lp.Timestamp {
					r.Offset, r.Timestamp = part.bases[j], ts
					break
				}
			}
		}
	}
	return resp, nil
}

// Metadata lists topics, auto-creating missing ones when asked.
func (m *MemBackend) Metadata(_ context.Context, req *brokerop.MetadataReq) (*brokerop.MetadataResp, error) {
	if err := m.lock("Metadata"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	resp := &brokerop.MetadataResp{Brokers: []brokerop.BrokerInfo{{NodeID: 0}}, ClusterID: "gatewaytest"}
	names := req.Topics
	if names == nil {
		for n := range m.topics {
			names = append(names, n)
		}
	}
	for _, n := range names {
		t := m.topics[n]
		if t == nil && req.AutoCreate && req.Topics != nil {
			t = m.create(n, m.defaultPartitions)
		}
		if t == nil {
			resp.Topics = append(resp.Topics, brokerop.TopicInfo{Name: n, ErrorCode: kafkawire.ErrUnknownTopicOrPartition})
			continue
		}
		ti := brokerop.TopicInfo{Name: n, TopicID: t.id}
		for p := range t.parts {
			ti.Partitions = append(ti.Partitions, brokerop.PartitionInfo{Partition: int32(p)})
		}
		resp.Topics = append(resp.Topics, ti)
	}
	return resp, nil
}

// CreateTopics creates topics (TOPIC_ALREADY_EXISTS for existing ones; as one broker,
// INVALID_REPLICATION_FACTOR for a replication factor other than 1 or -1).
func (m *MemBackend) CreateTopics(_ context.Context, req *brokerop.CreateTopicsReq) (*brokerop.CreateTopicsResp, error) {
	if err := m.lock("CreateTopics"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	resp := &brokerop.CreateTopicsResp{}
	for _, ct := range req.Topics {
		r := brokerop.CreateTopicResp{Name: ct.Name, NumPartitions: ct.NumPartitions}
		if r.NumPartitions == -1 {
			r.NumPartitions = m.defaultPartitions
		}
		if t := m.topics[ct.Name]; t != nil {
			r.ErrorCode = kafkawire.ErrTopicAlreadyExists
		} else if ct.ReplicationFactor != 1 && ct.ReplicationFactor != -1 {
			r.ErrorCode = kafkawire.ErrInvalidReplicationFactor
		} else if !req.ValidateOnly {
			r.TopicID = m.create(ct.Name, r.NumPartitions).id
		}
		resp.Topics = append(resp.Topics, r)
	}
	return resp, nil
}

// DeleteTopics drops topics and their data.
func (m *MemBackend) DeleteTopics(_ context.Context, req *brokerop.DeleteTopicsReq) (*brokerop.DeleteTopicsResp, error) {
	if err := m.lock("DeleteTopics"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	resp := &brokerop.DeleteTopicsResp{}
	for _, n := range req.Topics {
		r := brokerop.DeleteTopicResp{Name: n}
		if t := m.topics[n]; t == nil {
			r.ErrorCode = kafkawire.ErrUnknownTopicOrPartition
		} else {
			r.TopicID = t.id
			delete(m.topics, n)
		}
		resp.Topics = append(resp.Topics, r)
	}
	return resp, nil
}

// DescribeCluster answers one broker (id 0, the gateway's default node id) that is also the
// controller, in cluster "mem".
func (m *MemBackend) DescribeCluster(context.Context, *brokerop.DescribeClusterReq) (*brokerop.DescribeClusterResp, error) {
	if err := m.lock("DescribeCluster"); err != nil {
		return nil, err
	}
	m.mu.Unlock()
	return &brokerop.DescribeClusterResp{ClusterID: "mem", Brokers: []brokerop.BrokerInfo{{NodeID: 0}}}, nil
}
