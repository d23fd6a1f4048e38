package brokerop

// The broker's side of the two-plane ACL check (issue #17 item 4): what each KafkaOp asks of
// the principal a gateway acts for, from package acl's operation map (the gateway asks the
// same acl.Need values per Kafka API), and the context that carries the principal.

import (
	"context"
	"fmt"

	"github.com/meshkafka/meshkafka/broker/acl"
)

// Acting is the Kafka principal a call acts for and the client's host (RequestHeader's
// Principal and ClientHost).
type Acting struct {
	Principal string
	Host      string
}

type actingKey struct{}

// WithActing returns ctx carrying the principal calls made with it act for: the mesh Caller
// puts it in each request's header, and the broker's server puts a received one here.
func WithActing(ctx context.Context, a Acting) context.Context {
	return context.WithValue(ctx, actingKey{}, a)
}

// WithoutActing returns ctx carrying no principal: calls made with it are the calling node's
// own (a gateway loading ACLs or credentials, routing lookups), checked by its role only.
func WithoutActing(ctx context.Context) context.Context {
	if _, ok := ActingOf(ctx); !ok {
		return ctx
	}
	return context.WithValue(ctx, actingKey{}, Acting{})
}

// ActingOf returns the principal ctx carries, if any.
func ActingOf(ctx context.Context) (Acting, bool) {
	a, _ := ctx.Value(actingKey{}).(Acting)
	return a, a.Principal != ""
}

// RefusedError is an op refused by authorization: Code is the Kafka error the client is
// answered (TOPIC_AUTHORIZATION_FAILED, …). Over the mesh it is a StatusUnauthorized answer
// whose header carries the code.
type RefusedError struct {
	Code    int16
	Message string
}

func (e *RefusedError) Error() string { return e.Message }

// KafkaErrorCode is the Kafka error the gateway answers with (gateway.BackendErrorCode).
func (e *RefusedError) KafkaErrorCode() int16 { return e.Code }

// Refused returns the refusal of principal's ask.
func Refused(principal string, q acl.Ask) *RefusedError {
	return &RefusedError{Code: q.DeniedCode(), Message: fmt.Sprintf("%s may not %s", principal, q)}
}

// AuthorizeOp decides whether the principal allow decides for may run the op of req (a
// pointer to an op request struct): nil, or
// the refusal of the first ask it is refused (of alternatives, the first names the code:
// CreateTopics without CREATE is TOPIC_AUTHORIZATION_FAILED, an idempotent InitProducerID
// CLUSTER_AUTHORIZATION_FAILED, as Kafka answers them). Every resource the request names is asked
// (Kafka answers per resource; a broker refuses the whole op, which a gateway authorizing
// itself never sends). Ops of the brokers' own (placement, quorum membership, partition
// reports) ask CLUSTER_ACTION on the cluster, as Kafka's inter-broker APIs do; ClusterBrokers
// and Placement, the routing lookups a gateway makes while serving any request, ask nothing.
// An op this table does not know asks CLUSTER_ACTION too.
func AuthorizeOp(req any, principal string, allow func(acl.Ask) bool) *RefusedError {
	var refused *RefusedError
	ask := func(qs ...acl.Ask) bool {
		for _, q := range qs {
			if allow(q) {
				return true
			}
		}
		refused = Refused(principal, qs[0])
		return false
	}
	each := func(n acl.Need, names func(yield func(string) bool)) bool {
		ok, last, first := true, "", true
		names(func(name string) bool {
			if !first && name == last {
				return true // partitions of one topic come together: asked once
			}
			first, last = false, name
			ok = ask(n.On(name))
			return ok
		})
		return ok
	}
	switch r := req.(type) {
	case *ProduceReq: // the hot ops read their topics directly (topics calls a method per element)
		each(acl.ProduceTopic, func(y func(string) bool) {
			for i := range r.Partitions {
				if !y(r.Partitions[i].Topic) {
					return
				}
			}
		})
	case *FetchReq:
		each(acl.FetchTopic, func(y func(string) bool) {
			for i := range r.Partitions {
				if !y(r.Partitions[i].Topic) {
					return
				}
			}
		})
	case *ListOffsetsReq:
		each(acl.DescribeTopic, topics(r.Partitions))
	case *MetadataReq:
		for _, t := range r.Topics {
			if !ask(acl.MetadataTopic.On(t)) || r.AutoCreate && !ask(acl.CreateTopic.On(t), acl.CreateCluster.OnCluster()) {
				break
			}
		}
	case *CreateTopicsReq:
		for _, t := range r.Topics {
			if !ask(acl.CreateTopic.On(t.Name), acl.CreateCluster.OnCluster()) {
				break
			}
		}
	case *DeleteTopicsReq:
		each(acl.DeleteTopic, names(r.Topics))
	case *CreatePartitionsReq:
		each(acl.AlterTopic, topics(r.Topics))
	case *DescribeConfigsReq:
		for _, res := range r.Resources {
			if !ask(configAsk(acl.DescribeTopicConfigs, acl.DescribeClusterConfigs, res.Type, res.Name)) {
				break
			}
		}
	case *AlterConfigsReq:
		for _, res := range r.Resources {
			if !ask(configAsk(acl.AlterTopicConfigs, acl.AlterClusterConfigs, res.Type, res.Name)) {
				break
			}
		}
	case *IncrementalAlterConfigsReq:
		for _, res := range r.Resources {
			if !ask(configAsk(acl.AlterTopicConfigs, acl.AlterClusterConfigs, res.Type, res.Name)) {
				break
			}
		}
	case *DescribeClusterReq, *ListGroupsReq, *ListTransactionsReq, *ClusterBrokersReq, *PlacementReq:
		// Nothing asked: the gateway filters ListGroups and ListTransactions answers; the
		// rest describe the cluster's shape (DescribeCluster as Kafka: no ACL).
	case *DeleteRecordsReq:
		each(acl.DeleteTopic, topics(r.Partitions))
	case *OffsetForLeaderEpochReq:
		each(acl.DescribeTopic, topics(r.Partitions))
	case *DescribeLogDirsReq, *DescribeAclsReq, *DescribeUserScramCredentialsReq, *DescribeQuorumReq, *ListReassignmentsReq:
		ask(acl.DescribeCluster.OnCluster())
	case *CreateAclsReq, *DeleteAclsReq, *AlterUserScramCredentialsReq, *AlterReassignmentsReq, *ElectLeadersReq:
		ask(acl.AlterCluster.OnCluster())
	case *DescribeClientQuotasReq:
		ask(acl.DescribeQuotas.OnCluster())
	case *AlterClientQuotasReq:
		ask(acl.AlterQuotas.OnCluster())
	case *JoinGroupReq:
		ask(acl.GroupMember.On(r.Group))
	case *SyncGroupReq:
		ask(acl.GroupMember.On(r.Group))
	case *HeartbeatReq:
		ask(acl.GroupMember.On(r.Group))
	case *LeaveGroupReq:
		ask(acl.GroupMember.On(r.Group))
	case *OffsetCommitReq:
		if ask(acl.GroupMember.On(r.Group)) {
			each(acl.CommitTopic, topics(r.Topics))
		}
	case *OffsetFetchReq:
		ask(acl.DescribeGroup.On(r.Group))
	case *ConsumerGroupHeartbeatReq:
		ask(acl.GroupMember.On(r.Group))
	case *DescribeGroupsReq:
		each(acl.DescribeGroup, names(r.Groups))
	case *ConsumerGroupDescribeReq:
		each(acl.DescribeGroup, names(r.Groups))
	case *DeleteGroupsReq:
		each(acl.DeleteGroup, names(r.Groups))
	case *OffsetDeleteReq:
		if ask(acl.DeleteGroup.On(r.Group)) {
			each(acl.CommitTopic, topics(r.Topics))
		}
	case *InitProducerIDReq:
		ask(acl.IdempotentWrite.OnCluster(), acl.ProduceTopic.OnAny())
	case *InitTxnProducerIDReq:
		ask(acl.TxnWrite.On(r.TransactionalID))
	case *AddPartitionsToTxnReq:
		if ask(acl.TxnWrite.On(r.TransactionalID)) {
			each(acl.ProduceTopic, topics(r.Partitions))
		}
	case *AddOffsetsToTxnReq:
		_ = ask(acl.TxnWrite.On(r.TransactionalID)) && ask(acl.GroupMember.On(r.Group))
	case *TxnOffsetCommitReq:
		if ask(acl.TxnWrite.On(r.TransactionalID)) && ask(acl.GroupMember.On(r.Group)) {
			each(acl.CommitTopic, topics(r.Topics))
		}
	case *EndTxnReq:
		ask(acl.TxnWrite.On(r.TransactionalID))
	case *DescribeTransactionsReq:
		each(acl.DescribeTxnID, names(r.TransactionalIDs))
	case *DescribeProducersReq:
		each(acl.DescribeProducersTopic, topics(r.Partitions))
	case *ShareGroupHeartbeatReq: // share groups (KIP-932), as the gateway asks (api_share.go)
		if ask(acl.GroupMember.On(r.Group)) {
			each(acl.DescribeTopic, names(r.Topics))
		}
	case *ShareGroupDescribeReq:
		each(acl.DescribeGroup, names(r.Groups))
	case *ShareFetchReq:
		if ask(acl.GroupMember.On(r.Group)) {
			each(acl.FetchTopic, topics(r.Partitions))
		}
	case *ShareAcknowledgeReq:
		if ask(acl.GroupMember.On(r.Group)) {
			each(acl.FetchTopic, topics(r.Partitions))
		}
	case *DescribeShareGroupOffsetsReq:
		for _, g := range r.Groups {
			if !ask(acl.DescribeGroup.On(g.Group)) || !each(acl.DescribeTopic, topics(g.Partitions)) {
				break
			}
		}
	case *AlterShareGroupOffsetsReq:
		if ask(acl.GroupMember.On(r.Group)) {
			each(acl.FetchTopic, topics(r.Partitions))
		}
	case *DeleteShareGroupOffsetsReq:
		if ask(acl.DeleteGroup.On(r.Group)) {
			each(acl.FetchTopic, names(r.Topics))
		}
	default:
		// The brokers' own ops (QuorumJoin, QuorumAdmin, UpdatePartition,
		// TransferPartitionLeader, CompleteReassignment) and any op not listed here.
		ask(acl.ClusterAction.OnCluster())
	}
	return refused
}

// FilterAnswer removes from an allowed op's answer what the principal may not see: a
// Metadata answer for all topics keeps only the topics it may DESCRIBE (Kafka hides the
// others).
func FilterAnswer(req, resp any, allow func(acl.Ask) bool) {
	mreq, ok := req.(*MetadataReq)
	mresp, ok2 := resp.(*MetadataResp)
	if !ok || !ok2 || mreq.Topics != nil {
		return
	}
	kept := mresp.Topics[:0]
	for _, t := range mresp.Topics {
		if allow(acl.MetadataTopic.On(t.Name)) {
			kept = append(kept, t)
		}
	}
	clear(mresp.Topics[len(kept):])
	mresp.Topics = kept
}

func names(ns []string) func(func(string) bool) {
	return func(y func(string) bool) {
		for _, n := range ns {
			if !y(n) {
				return
			}
		}
	}
}

// topics yields the topic each element of s names, for each: ops name topics in lists of
// partitions or topics of their own types.
func topics[T any, P interface {
	*T
	topicName() string
}](s []T) func(func(string) bool) {
	return func(y func(string) bool) {
		for i := range s {
			if !y(P(&s[i]).topicName()) {
				return
			}
		}
	}
}

func (p *ListOffsetsPartition) topicName() string          { return p.Topic }
func (t *CreatePartitionsTopic) topicName() string         { return t.Name }
func (p *DeleteRecordsPartition) topicName() string        { return p.Topic }
func (p *OffsetForLeaderEpochPartition) topicName() string { return p.Topic }
func (t *OffsetCommitTopic) topicName() string             { return t.Topic }
func (t *OffsetDeleteTopic) topicName() string             { return t.Topic }
func (p *TxnPartition) topicName() string                  { return p.Topic }
func (p *ShareFetchPartition) topicName() string           { return p.Topic }
func (p *ShareAckPartition) topicName() string             { return p.Topic }
func (p *ShareTP) topicName() string                       { return p.Topic }
func (p *ShareOffset) topicName() string                   { return p.Topic }

// configAsk is the ask for a config resource: topic configs on the topic, broker configs
// on the cluster.
func configAsk(topic, cluster acl.Need, typ int8, name string) acl.Ask {
	if typ == ResourceTopic {
		return topic.On(name)
	}
	if typ == ResourceGroupConfig { // a group's configs: the topic need's operation on the group
		return acl.Need{Op: topic.Op, Type: acl.ResourceGroup}.On(name)
	}
	return cluster.OnCluster()
}
