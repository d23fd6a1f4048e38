package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
)

// stateOf renders the registry state for a topic map, with pending partition counts and
// config overrides taking precedence over the topics' current ones.
func (b *Broker) stateOf(m map[string]*topic, counts map[*topic]int32, cfgs map[*topic]map[string]string) *RegistryState {
	st := &RegistryState{ClusterID: b.clusterID}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		t := m[name]
		n, ok := counts[t]
		if !ok {
			n = int32(len(*t.parts.Load()))
		}
		c, ok := cfgs[t]
		if !ok {
			c = t.cfg.Load().overrides
		}
		var reps [][]uint64
		if rs := t.replicas.Load(); rs != nil {
			reps = *rs
		}
		st.Topics = append(st.Topics, TopicRecord{Name: t.name, ID: t.id, Partitions: n, Configs: c, Replicas: reps})
	}
	return st
}

// newTopicSpec is a validated topic to create.
type newTopicSpec struct {
	name       string
	partitions int32
	configs    map[string]string
}

// createTopicsLocked creates validated, non-existing topics: one registry write for all,
// then their logs. It returns one error per spec (nil: created) and the created topics.
// Callers hold adminMu.
func (b *Broker) createTopicsLocked(specs []newTopicSpec) ([]error, []*topic) {
	errs := make([]error, len(specs))
	if len(specs) == 0 {
		return errs, nil
	}
	cur := *b.topics.Load()
	next := maps.Clone(cur)
	ts := make([]*topic, len(specs))
	counts := map[*topic]int32{}
	for i, s := range specs {
		t := b.newTopic(s.name, b.newTopicID(), s.configs)
		ts[i] = t
		next[s.name] = t
		counts[t] = s.partitions
	}
	if err := b.storeRegistry(b.stateOf(next, counts, nil)); err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("broker: write topic registry: %w", err)
		}
		return errs, nil
	}
	// Partition logs are created on first write (useLog); the topic directory is made now
	// so that its entry is durable before any partition directory appears in it (wal fsyncs
	// a partition directory's parent, not the topics directory above that).
	var failed bool
	for i, t := range ts {
		if err := b.fs.MkdirAll(t.dir, 0o755); err != nil {
			errs[i] = fmt.Errorf("broker: create topic directory: %w", err)
			delete(next, t.name)
			failed = true
			continue
		}
		parts := b.newPartitions(t, 0, specs[i].partitions, nil)
		t.parts.Store(&parts)
	}
	// The new topic directories' entries: wal fsyncs each partition directory's parent (the
	// topic directory) but not the topics directory that holds it. Without it a crash could
	// lose a topic's directory, and with it acknowledged records: the creation fails.
	if err := b.fs.SyncDir(b.topicsDir); err != nil {
		b.log.Error("broker: sync topics dir after create", "err", err)
		for i, t := range ts {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("broker: sync topics dir: %w", err)
				delete(next, t.name) // no log of it is open yet: they open on first use
				failed = true
			}
		}
	}
	if failed {
		if err := b.storeRegistry(b.stateOf(next, nil, nil)); err != nil {
			b.log.Error("broker: registry rollback after failed create", "err", err)
		}
		for i, t := range ts {
			if errs[i] != nil {
				_ = b.fs.RemoveAll(t.dir)
			}
		}
	}
	b.topics.Store(&next)
	var created []*topic
	for i, t := range ts {
		if errs[i] == nil {
			created = append(created, t)
			b.partitions.Add(int64(specs[i].partitions))
			b.log.Info("broker: created topic", "topic", t.name, "partitions", specs[i].partitions)
		}
	}
	return errs, created
}

// partitionLimitMessage is the INVALID_PARTITIONS message for adding n partitions when the
// broker already has have (or "" if they fit under Config.MaxPartitions).
func (b *Broker) partitionLimitMessage(have, n int64) string {
	limit := int64(b.maxPartitions())
	if n <= limit-have {
		return ""
	}
	return fmt.Sprintf("Adding %d partitions would bring this broker to %d partitions, above its limit of %d "+
		"(the broker's max partitions setting; it now has %d).", n, have+n, limit, have)
}

func (b *Broker) maxPartitions() int {
	if b.cfg.MaxPartitions > 0 {
		return b.cfg.MaxPartitions
	}
	return DefaultMaxPartitions
}

// internalError logs an internal failure in full and returns the Kafka code and a message
// for the client that names what failed without internal details (paths, errno text is
// kept only when it says what ran out).
func (b *Broker) internalError(op string, err error) (int16, string) {
	b.log.Error("broker: "+op, "err", err)
	if b.Err() != nil {
		return kerr.UnknownServerError.Code, "The broker stopped because a durable write's outcome is unknown; it must be restarted (details in the broker log)."
	}
	var why string
	switch {
	case errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE):
		why = ": the broker ran out of file descriptors"
	case errors.Is(err, syscall.ENOSPC):
		why = ": the broker's disk is full"
	case errors.Is(err, syscall.EROFS):
		why = ": the broker's data directory is read-only"
	}
	return kerr.KafkaStorageError.Code, fmt.Sprintf("Storage error on the broker while trying to %s%s (details in the broker log).", op, why)
}

// CreateTopics creates topics with Kafka's validation and error codes: INVALID_TOPIC_EXCEPTION
// (bad or colliding name), TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR
// (only 1 or -1 can be honoured), INVALID_CONFIG, INVALID_REQUEST (a name listed twice).
// ValidateOnly checks everything and creates nothing.
func (b *Broker) CreateTopics(ctx context.Context, req *brokerop.CreateTopicsReq) (*brokerop.CreateTopicsResp, error) {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.CreateTopicsResp{Topics: make([]brokerop.CreateTopicResp, len(req.Topics))}
	seen := map[string]int{}
	for _, ct := range req.Topics {
		seen[ct.Name]++
	}
	cur := *b.topics.Load()
	keys := map[string]string{}
	for name := range cur {
		keys[metadata.CollisionKey(name)] = name
	}
	var specs []newTopicSpec
	var idx []int
	total := b.partitions.Load() // the broker's partitions plus those this request adds
	for i, ct := range req.Topics {
		r := &resp.Topics[i]
		r.Name, r.NumPartitions, r.ReplicationFactor = ct.Name, -1, -1
		fail := func(code *kerr.Error, msg string) { r.ErrorCode, r.ErrorMessage = code.Code, msg }
		if seen[ct.Name] > 1 {
			fail(kerr.InvalidRequest, fmt.Sprintf("Create topics request contains multiple entries for the following topics: %s", ct.Name))
			continue
		}
		if msg := metadata.ValidateTopicName(ct.Name); msg != "" {
			fail(kerr.InvalidTopicException, msg)
			continue
		}
		if cur[ct.Name] != nil {
			fail(kerr.TopicAlreadyExists, fmt.Sprintf("Topic '%s' already exists.", ct.Name))
			continue
		}
		if other, ok := keys[metadata.CollisionKey(ct.Name)]; ok {
			fail(kerr.InvalidTopicException, fmt.Sprintf("Topic '%s' collides with existing topic: %s", ct.Name, other))
			continue
		}
		n := ct.NumPartitions
		if n == -1 {
			n = b.cfg.DefaultPartitions
		}
		if n <= 0 {
			fail(kerr.InvalidPartitions, "Number of partitions was set to an invalid non-positive value.")
			continue
		}
		if msg := b.partitionLimitMessage(total, int64(n)); msg != "" {
			fail(kerr.InvalidPartitions, msg)
			continue
		}
		switch rf := ct.ReplicationFactor; {
		case rf == -1 || rf == 1:
		case rf <= 0:
			fail(kerr.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value.")
			continue
		default:
			fail(kerr.InvalidReplicationFactor, fmt.Sprintf("Unable to replicate the partition %d time(s): The target replication factor of %d cannot be reached because only 1 broker(s) are registered.", rf, rf))
			continue
		}
		cfgs, err := validateConfigs(ct.Configs)
		if err != nil {
			fail(kerr.InvalidConfig, err.Error())
			continue
		}
		keys[metadata.CollisionKey(ct.Name)] = ct.Name
		total += int64(n)
		r.NumPartitions, r.ReplicationFactor = n, 1
		r.Configs = describeTopicConfigs(cfgs, b.cfg.TopicDefaults, nil, false, false)
		if !req.ValidateOnly {
			specs = append(specs, newTopicSpec{ct.Name, n, cfgs})
			idx = append(idx, i)
		}
	}
	errs, created := b.createTopicsLocked(specs)
	for j, i := range idx {
		r := &resp.Topics[i]
		if errs[j] != nil {
			r.ErrorCode, r.ErrorMessage = b.internalError("create topic "+r.Name, errs[j])
			r.NumPartitions, r.ReplicationFactor, r.Configs = -1, -1, nil
		}
	}
	for _, t := range created {
		for i := range resp.Topics {
			if resp.Topics[i].Name == t.name && resp.Topics[i].ErrorCode == 0 {
				resp.Topics[i].TopicID = t.id
			}
		}
	}
	return resp, nil
}

// DeleteTopics removes topics: the registry forgets them first (durably), then their logs are
// closed and their directories removed, reclaiming the space. A crash in between leaves
// unregistered directories that the next Open purges.
func (b *Broker) DeleteTopics(ctx context.Context, req *brokerop.DeleteTopicsReq) (*brokerop.DeleteTopicsResp, error) {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.DeleteTopicsResp{Topics: make([]brokerop.DeleteTopicResp, len(req.Topics))}
	seen := map[string]int{}
	for _, n := range req.Topics {
		seen[n]++
	}
	cur := *b.topics.Load()
	next := maps.Clone(cur)
	var gone []*topic
	var idx []int
	for i, name := range req.Topics {
		r := &resp.Topics[i]
		r.Name = name
		t := cur[name]
		switch {
		case seen[name] > 1:
			r.ErrorCode = kerr.InvalidRequest.Code
		case t == nil:
			r.ErrorCode = kerr.UnknownTopicOrPartition.Code
		default:
			r.TopicID = t.id
			delete(next, name)
			gone = append(gone, t)
			idx = append(idx, i)
		}
	}
	if len(gone) == 0 {
		return resp, nil
	}
	if err := b.storeRegistry(b.stateOf(next, nil, nil)); err != nil {
		b.log.Error("broker: delete topics", "err", err)
		for _, i := range idx {
			resp.Topics[i].ErrorCode = kerr.UnknownServerError.Code
		}
		return resp, nil
	}
	b.topics.Store(&next)
	b.removeTopicsLocked(gone)
	return resp, nil
}

// removeTopicsLocked closes and removes the logs and directories of topics already taken out
// of the topic map. Callers hold adminMu.
func (b *Broker) removeTopicsLocked(gone []*topic) {
	for _, t := range gone {
		parts := *t.parts.Load()
		b.partitions.Add(-int64(len(parts)))
		for _, p := range parts {
			b.stopGroup(p)
			p.deleted.Store(true)
			p.wake()
			p.lockLogForWrite()
			if l := p.log; l != nil {
				if err := l.Remove(); err != nil {
					b.log.Warn("broker: remove partition log", "topic", t.name, "partition", p.index, "err", err)
				}
				b.openLogs.Add(-1)
				p.log = nil
			}
			p.logMu.Unlock()
		}
		if err := b.fs.RemoveAll(t.dir); err != nil {
			b.log.Warn("broker: remove topic dir", "topic", t.name, "err", err)
		}
		b.log.Info("broker: deleted topic", "topic", t.name)
	}
	if err := b.fs.SyncDir(b.topicsDir); err != nil {
		b.log.Warn("broker: sync topics dir", "err", err)
	}
}

// Metadata describes the requested topics (nil: all), creating missing ones with the default
// partition count when AutoCreate is set.
func (b *Broker) Metadata(ctx context.Context, req *brokerop.MetadataReq) (*brokerop.MetadataResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.MetadataResp{
		Brokers:      []brokerop.BrokerInfo{{NodeID: b.cfg.NodeID}},
		ClusterID:    b.clusterID,
		ControllerID: b.cfg.NodeID,
	}
	if req.Topics == nil {
		for _, t := range b.sortedTopics() {
			resp.Topics = append(resp.Topics, b.topicInfo(t))
		}
		return resp, nil
	}
	var names []string
	seen := map[string]bool{}
	for _, n := range req.Topics {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	if req.AutoCreate {
		if err := b.autoCreate(names); err != nil {
			b.log.Warn("broker: auto-create", "err", err)
		}
	}
	m := *b.topics.Load()
	for _, n := range names {
		if t := m[n]; t != nil {
			resp.Topics = append(resp.Topics, b.topicInfo(t))
			continue
		}
		code := kerr.UnknownTopicOrPartition.Code
		if metadata.ValidateTopicName(n) != "" {
			code = kerr.InvalidTopicException.Code
		}
		resp.Topics = append(resp.Topics, brokerop.TopicInfo{Name: n, ErrorCode: code})
	}
	return resp, nil
}

func (b *Broker) autoCreate(names []string) error {
	m := *b.topics.Load()
	missing := false
	for _, n := range names {
		if m[n] == nil && metadata.ValidateTopicName(n) == "" {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if b.closed.Load() {
		return ErrClosed
	}
	m = *b.topics.Load()
	keys := map[string]bool{}
	for n := range m {
		keys[metadata.CollisionKey(n)] = true
	}
	var specs []newTopicSpec
	var errs []error
	total := b.partitions.Load()
	for _, n := range names {
		if m[n] != nil || metadata.ValidateTopicName(n) != "" || keys[metadata.CollisionKey(n)] {
			continue
		}
		if msg := b.partitionLimitMessage(total, int64(b.cfg.DefaultPartitions)); msg != "" {
			errs = append(errs, fmt.Errorf("topic %s not created: %s", n, msg))
			continue
		}
		total += int64(b.cfg.DefaultPartitions)
		keys[metadata.CollisionKey(n)] = true
		specs = append(specs, newTopicSpec{n, b.cfg.DefaultPartitions, map[string]string{}})
	}
	cerrs, _ := b.createTopicsLocked(specs)
	return errors.Join(append(errs, cerrs...)...)
}

func (b *Broker) topicInfo(t *topic) brokerop.TopicInfo {
	parts := *t.parts.Load()
	info := brokerop.TopicInfo{Name: t.name, TopicID: t.id, Partitions: make([]brokerop.PartitionInfo, len(parts))}
	for i := range parts {
		info.Partitions[i] = brokerop.PartitionInfo{Partition: int32(i), Leader: b.cfg.NodeID}
	}
	return info
}

// CreatePartitions grows topics. Errors as Kafka: UNKNOWN_TOPIC_OR_PARTITION, INVALID_PARTITIONS
// (not more than now), INVALID_REPLICA_ASSIGNMENT (assignments that do not name exactly this
// broker once per new partition), INVALID_REQUEST (a topic listed twice).
func (b *Broker) CreatePartitions(ctx context.Context, req *brokerop.CreatePartitionsReq) (*brokerop.CreatePartitionsResp, error) {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.CreatePartitionsResp{Topics: make([]brokerop.CreatePartitionsTopicResp, len(req.Topics))}
	seen := map[string]int{}
	for _, ct := range req.Topics {
		seen[ct.Name]++
	}
	cur := *b.topics.Load()
	for i, ct := range req.Topics {
		r := &resp.Topics[i]
		r.Name = ct.Name
		fail := func(code *kerr.Error, msg string) { r.ErrorCode, r.ErrorMessage = code.Code, msg }
		t := cur[ct.Name]
		if seen[ct.Name] > 1 {
			fail(kerr.InvalidRequest, "Duplicate topic in request.")
			continue
		}
		if t == nil {
			fail(kerr.UnknownTopicOrPartition, fmt.Sprintf("The topic '%s' does not exist.", ct.Name))
			continue
		}
		have := int32(len(*t.parts.Load()))
		switch {
		case ct.Count < have:
			fail(kerr.InvalidPartitions, fmt.Sprintf("Topic currently has %d partitions, which is higher than the requested %d.", have, ct.Count))
			continue
		case ct.Count == have:
			fail(kerr.InvalidPartitions, fmt.Sprintf("Topic already has %d partitions.", have))
			continue
		}
		if len(ct.Assignments) > 0 {
			if int32(len(ct.Assignments)) != ct.Count-have {
				fail(kerr.InvalidReplicaAssignment, fmt.Sprintf("Increasing the number of partitions by %d but %d assignments provided.", ct.Count-have, len(ct.Assignments)))
				continue
			}
			bad := false
			for _, a := range ct.Assignments {
				if len(a) != 1 || a[0] != b.cfg.NodeID {
					bad = true
				}
			}
			if bad {
				fail(kerr.InvalidReplicaAssignment, fmt.Sprintf("Replica assignments must name exactly broker %d once: partitions have a single replica.", b.cfg.NodeID))
				continue
			}
		}
		if msg := b.partitionLimitMessage(b.partitions.Load(), int64(ct.Count-have)); msg != "" {
			fail(kerr.InvalidPartitions, msg)
			continue
		}
		if req.ValidateOnly {
			continue
		}
		if err := b.growLocked(t, have, ct.Count); err != nil {
			r.ErrorCode, r.ErrorMessage = b.internalError("create partitions of "+t.name, err)
		}
	}
	return resp, nil
}

// growLocked registers t's new partition count and adds the partitions (their logs are
// created on first write). A directory that is there already (a registry write whose outcome
// was unknown) is not trusted to be empty: its partition opens it on first read.
func (b *Broker) growLocked(t *topic, have, want int32) error {
	m := *b.topics.Load()
	if err := b.storeRegistry(b.stateOf(m, map[*topic]int32{t: want}, nil)); err != nil {
		return fmt.Errorf("broker: write topic registry: %w", err)
	}
	parts := b.newPartitions(t, have, want, b.partitionsOnDisk(t))
	all := append(slices.Clone(*t.parts.Load()), parts...)
	t.parts.Store(&all)
	b.partitions.Add(int64(want - have))
	b.log.Info("broker: created partitions", "topic", t.name, "partitions", want)
	return nil
}

// DescribeCluster reports the cluster id, the controller and the brokers (this one).
func (b *Broker) DescribeCluster(ctx context.Context, req *brokerop.DescribeClusterReq) (*brokerop.DescribeClusterResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	return &brokerop.DescribeClusterResp{
		ClusterID:    b.clusterID,
		ControllerID: b.cfg.NodeID,
		Brokers:      []brokerop.BrokerInfo{{NodeID: b.cfg.NodeID}},
	}, nil
}

// DescribeConfigs reports topic configs (every supported config, with Kafka's defaults,
// sources and synonyms) and this broker's read-only configs.
func (b *Broker) DescribeConfigs(ctx context.Context, req *brokerop.DescribeConfigsReq) (*brokerop.DescribeConfigsResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if hasGroupResource(req.Resources, func(r brokerop.DescribeConfigsResource) int8 { return r.Type }) {
		return b.describeWithGroups(ctx, req) // share_configs.go
	}
	resp := &brokerop.DescribeConfigsResp{Resources: make([]brokerop.DescribeConfigsResourceResp, len(req.Resources))}
	m := *b.topics.Load()
	for i, rs := range req.Resources {
		r := &resp.Resources[i]
		r.Type, r.Name = rs.Type, rs.Name
		switch rs.Type {
		case brokerop.ResourceTopic:
			t := m[rs.Name]
			if t == nil {
				r.ErrorCode, r.ErrorMessage = kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("Topic '%s' does not exist.", rs.Name)
				continue
			}
			r.Configs = describeTopicConfigs(t.cfg.Load().overrides, b.cfg.TopicDefaults, rs.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
		case brokerop.ResourceBroker:
			if msg := b.checkBrokerName(rs.Name); msg != "" {
				r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, msg
				continue
			}
			r.Configs = describeBrokerConfigs(b, rs.ConfigNames, req.IncludeDocumentation)
		default:
			r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, fmt.Sprintf("Unsupported resource type %d", rs.Type)
		}
	}
	return resp, nil
}

func (b *Broker) checkBrokerName(name string) string {
	if name == "" || name == strconv.Itoa(int(b.cfg.NodeID)) {
		return ""
	}
	return fmt.Sprintf("Unexpected broker id, expected %d or empty string, but received %s", b.cfg.NodeID, name)
}

// AlterConfigs replaces topics' whole config sets (configs not listed return to their
// defaults). Broker configs are static here: altering them is refused.
func (b *Broker) AlterConfigs(ctx context.Context, req *brokerop.AlterConfigsReq) (*brokerop.AlterConfigsResp, error) {
	return b.alterConfigs(len(req.Resources), req.ValidateOnly, func(i int) (int8, string, alterFn) {
		rs := req.Resources[i]
		return rs.Type, rs.Name, func(map[string]string) (map[string]string, *kerr.Error, string) {
			next := map[string]string{}
			for _, c := range rs.Configs {
				if _, dup := next[c.Name]; dup {
					return nil, kerr.InvalidRequest, fmt.Sprintf("Error due to duplicate config keys: %s", c.Name)
				}
				if c.Value == nil {
					return nil, kerr.InvalidRequest, fmt.Sprintf("Null value not supported for: %s", c.Name)
				}
				next[c.Name] = *c.Value
			}
			return next, nil, ""
		}
	})
}

// IncrementalAlterConfigs changes single topic configs: SET, DELETE (back to the default),
// APPEND and SUBTRACT (list configs only, i.e. cleanup.policy).
func (b *Broker) IncrementalAlterConfigs(ctx context.Context, req *brokerop.IncrementalAlterConfigsReq) (*brokerop.AlterConfigsResp, error) {
	if hasGroupResource(req.Resources, func(r brokerop.IncrementalAlterConfigsResource) int8 { return r.Type }) {
		return b.incrementalWithGroups(ctx, req) // share_configs.go
	}
	return b.alterConfigs(len(req.Resources), req.ValidateOnly, func(i int) (int8, string, alterFn) {
		rs := req.Resources[i]
		return rs.Type, rs.Name, func(cur map[string]string) (map[string]string, *kerr.Error, string) {
			next := maps.Clone(cur)
			if next == nil {
				next = map[string]string{}
			}
			seen := map[string]bool{}
			for _, c := range rs.Configs {
				if seen[c.Name] {
					return nil, kerr.InvalidRequest, fmt.Sprintf("Error due to duplicate config keys: %s", c.Name)
				}
				seen[c.Name] = true
				d := findConfigDef(c.Name)
				if d == nil {
					return nil, kerr.InvalidConfig, fmt.Sprintf("Unknown topic config name: %s", c.Name)
				}
				val := ""
				if c.Value != nil {
					val = *c.Value
				}
				switch c.Op {
				case brokerop.ConfigOpSet:
					if c.Value == nil {
						return nil, kerr.InvalidRequest, fmt.Sprintf("Null value not supported for: %s", c.Name)
					}
					next[c.Name] = val
				case brokerop.ConfigOpDelete:
					delete(next, c.Name)
				case brokerop.ConfigOpAppend, brokerop.ConfigOpSubtract:
					if d.typ != brokerop.ConfigTypeList {
						verb := "append"
						if c.Op == brokerop.ConfigOpSubtract {
							verb = "subtract"
						}
						return nil, kerr.InvalidConfig, fmt.Sprintf("Config value %s is not allowed for config key: %s", verb, c.Name)
					}
					list, ok := next[c.Name]
					if !ok {
						list = b.effective(c.Name)
					}
					items := splitList(list)
					for _, v := range splitList(val) {
						if c.Op == brokerop.ConfigOpAppend && !slices.Contains(items, v) {
							items = append(items, v)
						}
						if c.Op == brokerop.ConfigOpSubtract {
							items = slices.DeleteFunc(items, func(x string) bool { return x == v })
						}
					}
					next[c.Name] = strings.Join(items, ",")
				default:
					return nil, kerr.InvalidRequest, fmt.Sprintf("Unknown config operation %d for %s", c.Op, c.Name)
				}
			}
			return next, nil, ""
		}
	})
}

// effective is a config's broker-level value (broker default or Kafka default).
func (b *Broker) effective(name string) string {
	if v, ok := b.cfg.TopicDefaults[name]; ok {
		return v
	}
	return findConfigDef(name).def
}

type alterFn func(cur map[string]string) (map[string]string, *kerr.Error, string)

// alterConfigs validates every resource's new config set, stores all changed topics in one
// registry write and then publishes them.
func (b *Broker) alterConfigs(n int, validateOnly bool, get func(int) (int8, string, alterFn)) (*brokerop.AlterConfigsResp, error) {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.AlterConfigsResp{Resources: make([]brokerop.AlterConfigsResourceResp, n)}
	m := *b.topics.Load()
	changed := map[*topic]map[string]string{}
	var idx []int
	for i := range n {
		typ, name, apply := get(i)
		r := &resp.Resources[i]
		r.Type, r.Name = typ, name
		fail := func(code *kerr.Error, msg string) { r.ErrorCode, r.ErrorMessage = code.Code, msg }
		switch typ {
		case brokerop.ResourceTopic:
		case brokerop.ResourceBroker:
			if msg := b.checkBrokerName(name); msg != "" {
				fail(kerr.InvalidRequest, msg)
			} else {
				fail(kerr.InvalidRequest, "Broker configs are static on this broker and cannot be altered.")
			}
			continue
		default:
			fail(kerr.InvalidRequest, fmt.Sprintf("Unsupported resource type %d", typ))
			continue
		}
		t := m[name]
		if t == nil {
			fail(kerr.UnknownTopicOrPartition, fmt.Sprintf("Topic '%s' does not exist.", name))
			continue
		}
		if _, dup := changed[t]; dup {
			fail(kerr.InvalidRequest, fmt.Sprintf("Duplicate resource in request: topic %s", name))
			continue
		}
		next, code, msg := apply(t.cfg.Load().overrides)
		if code != nil {
			fail(code, msg)
			continue
		}
		norm, err := validateConfigs(next)
		if err != nil {
			fail(kerr.InvalidConfig, err.Error())
			continue
		}
		if !validateOnly {
			changed[t] = norm
			idx = append(idx, i)
		}
	}
	if len(changed) == 0 {
		return resp, nil
	}
	if err := b.storeRegistry(b.stateOf(m, nil, changed)); err != nil {
		code, msg := b.internalError("alter topic configs", fmt.Errorf("broker: write topic registry: %w", err))
		for _, i := range idx {
			resp.Resources[i].ErrorCode, resp.Resources[i].ErrorMessage = code, msg
		}
		return resp, nil
	}
	for t, c := range changed {
		old := t.cfg.Load()
		cfg := resolveConfig(c, b.cfg.TopicDefaults)
		t.cfg.Store(cfg)
		if cfg.segmentBytes != old.segmentBytes {
			b.reopenLocked(t)
		}
		b.log.Info("broker: altered topic configs", "topic", t.name, "configs", c)
	}
	return resp, nil
}
