package gateway

// Metadata (key 3), v0–12.
//
//   - The gateway fronts every broker. Single-owner partitions (replication factor 1): the
//     gateway leads them (leader epoch 0, replicas = ISR = [NodeID], no offline replicas).
//     Replicated partitions (issue #16): leader, leader epoch, replicas, ISR and offline
//     replicas as the backend reports them, in the brokers' Kafka ids (leader epoch -1 while
//     no leader was reported; the leader is then the preferred one).
//   - Brokers = [{NodeID, advertised host, port}], plus, when the backend reports several
//     brokers (a quorum of brokers), each of them under its Kafka id at the same advertised
//     address: a client then sends a partition's requests "to its leader", which is this
//     gateway, and the gateway routes them to the leader broker. With Config.DirectBrokers
//     (a broker's own Kafka listener, or a gateway started with -direct-brokers), a broker
//     that advertises a Kafka listener is listed at that address instead, so the client
//     talks to each partition's leader broker directly, as with Kafka.
//   - Topics: v0 empty list = all topics; v1+ null = all, empty = none. v10+ carries topic
//     ids in the answer; v10+ requests may name a topic by id only (resolved via the cache).
//   - Auto-creation: v0–v3 auto-create (no flag in the request); v4+ honour
//     allow_auto_topic_creation; Config.DisableAutoCreate turns it off for all versions.
//     A missing topic that is not created is UNKNOWN_TOPIC_OR_PARTITION.
//   - Authorized operations (v8+) are not computed: the "not requested" sentinel is sent.
//   - A backend failure answers every requested topic with LEADER_NOT_AVAILABLE.

import (
	"context"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/kafkawire"
)

func handleMetadata(ctx context.Context, r *Request, req *kmsg.MetadataRequest, resp *kmsg.MetadataResponse) {
	s := r.Server
	v := req.Version

	breq := &brokerop.MetadataReq{AutoCreate: !s.cfg.DisableAutoCreate && (v < 4 || req.AllowAutoTopicCreation)}
	all := req.Topics == nil || (v == 0 && len(req.Topics) == 0)
	var unknownIDs [][16]byte // requested by id, not found
	if !all {
		breq.Topics = make([]string, 0, len(req.Topics))
		var ids [][16]byte
		for _, t := range req.Topics {
			if t.Topic != nil && *t.Topic != "" {
				breq.Topics = append(breq.Topics, *t.Topic)
			} else {
				ids = append(ids, t.TopicID)
			}
		}
		if len(ids) > 0 {
			for i, n := range s.topics.names(ctx, ids) {
				if n == "" {
					unknownIDs = append(unknownIDs, ids[i])
				} else {
					breq.Topics = append(breq.Topics, n)
				}
			}
		}
	}

	host, port := r.Advertised()
	// direct holds the brokers listed at their own Kafka listeners (Config.DirectBrokers).
	var direct map[int32]brokerop.BrokerInfo
	addBroker := func(id int32) {
		for _, b := range resp.Brokers {
			if b.NodeID == id {
				return
			}
		}
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = id, host, port
		if bi, ok := direct[id]; ok {
			b.Host, b.Port = splitKafkaAddr(bi.Kafka, host, port)
		}
		resp.Brokers = append(resp.Brokers, b)
	}
	addBroker(s.NodeID())
	resp.ControllerID = s.NodeID()
	if req.IncludeClusterAuthorizedOperations && v >= 8 && v <= 10 {
		resp.AuthorizedOperations = r.clusterOps(ctx)
	}

	// Authorization (authz.go): a topic needs DESCRIBE to be shown. Listing all topics hides
	// the others; a topic asked by name without DESCRIBE is TOPIC_AUTHORIZATION_FAILED. A
	// topic auto-created needs CREATE on the cluster or the topic: without it, a missing
	// topic is TOPIC_AUTHORIZATION_FAILED and nothing is created.
	authorized := r.authorizedFn(ctx)
	var deniedTopics []string
	noCreate := map[string]bool{}
	if !all {
		kept := breq.Topics[:0]
		canCreateCluster := authorized(acl.CreateCluster, acl.ClusterName)
		for _, name := range breq.Topics {
			if !authorized(acl.MetadataTopic, name) {
				deniedTopics = append(deniedTopics, name)
				continue
			}
			if breq.AutoCreate && !canCreateCluster && !authorized(acl.CreateTopic, name) {
				noCreate[name] = true
			}
			kept = append(kept, name)
		}
		breq.Topics = kept
		if len(noCreate) > 0 {
			breq.AutoCreate = false
		}
	}
	for _, name := range deniedTopics {
		t := kmsg.NewMetadataResponseTopic()
		t.Topic, t.ErrorCode = kmsg.StringPtr(name), kerr.TopicAuthorizationFailed.Code
		resp.Topics = append(resp.Topics, t)
	}

	var bresp *brokerop.MetadataResp
	if all || len(breq.Topics) > 0 {
		var err error
		bresp, err = s.Backend().Metadata(ctx, breq)
		if err != nil {
			code := BackendErrorCode(err)
			if code == kafkawire.ErrNotLeaderOrFollower {
				code = kafkawire.ErrLeaderNotAvailable
			}
			for _, name := range breq.Topics {
				t := kmsg.NewMetadataResponseTopic()
				t.Topic, t.ErrorCode = kmsg.StringPtr(name), code
				resp.Topics = append(resp.Topics, t)
			}
			return
		}
		s.topics.observe(bresp)
		if s.cfg.DirectBrokers {
			for _, b := range bresp.Brokers {
				if _, _, ok := parseKafkaAddr(b.Kafka); ok && b.NodeID != s.NodeID() {
					if direct == nil {
						direct = map[int32]brokerop.BrokerInfo{}
					}
					direct[b.NodeID] = b
				}
			}
		}
		for id := range direct { // brokers with their own listeners; the others only through this server
			addBroker(id)
		}
		if bresp.ClusterID != "" {
			resp.ClusterID = kmsg.StringPtr(bresp.ClusterID)
		}
	}
	if resp.ClusterID == nil {
		if id := s.ClusterID(); id != "" {
			resp.ClusterID = kmsg.StringPtr(id)
		}
	}
	if bresp != nil {
		for i := range bresp.Topics {
			bt := &bresp.Topics[i]
			if all && !authorized(acl.MetadataTopic, bt.Name) {
				continue
			}
			t := kmsg.NewMetadataResponseTopic()
			t.Topic, t.TopicID, t.IsInternal, t.ErrorCode = kmsg.StringPtr(bt.Name), bt.TopicID, bt.Internal, bt.ErrorCode
			if noCreate[bt.Name] && bt.ErrorCode == kerr.UnknownTopicOrPartition.Code {
				t.ErrorCode = kerr.TopicAuthorizationFailed.Code
			}
			if req.IncludeTopicAuthorizedOperations && v >= 8 && t.ErrorCode == 0 {
				t.AuthorizedOperations = r.authorizedOps(ctx, acl.ResourceTopic, bt.Name)
			}
			t.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, len(bt.Partitions))
			for _, bp := range bt.Partitions {
				p := kmsg.NewMetadataResponseTopicPartition()
				p.Partition, p.ErrorCode, p.LeaderEpoch = bp.Partition, bp.ErrorCode, 0
				if len(bp.Replicas) > 0 {
					// A replicated partition: replicas, ISR and offline replicas by broker id, the
					// leader epoch from the raft term. The leader clients are told to dial is the
					// leading broker when it has a listener of its own (DirectBrokers), else this
					// server: brokers reached only through it are not listed at all, because
					// several broker ids at one host:port break clients that key connections by
					// address (kafkajs then sends a Produce without its partitions and reports
					// success; librdkafka's consumers hop between the "brokers" and stall).
					p.Leader, p.LeaderEpoch = s.NodeID(), bp.LeaderEpoch
					if bp.Leader < 0 {
						p.Leader = bp.Leader // no leader now: clients wait and refresh
					} else if _, ok := direct[bp.Leader]; ok {
						p.Leader = bp.Leader
						addBroker(bp.Leader)
					}
					p.Replicas, p.ISR, p.OfflineReplicas = bp.Replicas, nonNil(bp.ISR), nonNil(bp.OfflineReplicas)
				} else {
					// One gateway fronts every broker: clients always dial the gateway.
					p.Leader = s.NodeID()
					p.Replicas, p.ISR, p.OfflineReplicas = []int32{s.NodeID()}, []int32{s.NodeID()}, []int32{}
				}
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
	}
	for _, id := range unknownIDs {
		t := kmsg.NewMetadataResponseTopic()
		t.TopicID, t.ErrorCode = id, kafkawire.ErrUnknownTopicID
		resp.Topics = append(resp.Topics, t)
	}
}

// splitKafkaAddr splits a broker's advertised host:port; a malformed one falls back to this
// server's address (Metadata never lists such a broker: see parseKafkaAddr).
func splitKafkaAddr(hp, host string, port int32) (string, int32) {
	if h, n, ok := parseKafkaAddr(hp); ok {
		return h, n
	}
	return host, port
}

// parseKafkaAddr splits a broker's advertised host:port, reporting false for an empty or
// malformed one (the metadata quorum checks only its length): such a broker is reached
// through this server, like one without a listener.
func parseKafkaAddr(hp string) (string, int32, bool) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, false
	}
	n, err := strconv.Atoi(p)
	if err != nil || h == "" || n <= 0 || n > 65535 {
		return "", 0, false
	}
	return h, int32(n), true
}

func nonNil(ids []int32) []int32 {
	if ids == nil {
		return []int32{}
	}
	return ids
}
