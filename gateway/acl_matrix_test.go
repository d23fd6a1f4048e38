package gateway_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// The ACL matrix (issue 17): Kafka's documented operation map ("Operations and Resources on
// Protocols") as a table. For each API the gateway serves, each resource it needs and each
// pattern type (LITERAL, PREFIXED, the LITERAL wildcard "*"), a principal without the ACL gets
// Kafka's error and with it gets through; the implied operations (DESCRIBE by READ, WRITE,
// DELETE, ALTER and ALL; DESCRIBE_CONFIGS by ALTER_CONFIGS) grant too; a DENY beats the ALLOW;
// the super user passes.

const (
	// hidden is the matrix's code for "the resource is silently left out" (Metadata of all
	// topics, ListGroups, ListTransactions filter rather than fail).
	hidden int16 = -1000

	mxTopic  = "mx-topic"
	mxDelTop = "mx-deltopic"
	mxNewTop = "mx-newtopic"
	mxTxn    = "mx-txn"
	cluster  = "kafka-cluster"
)

// need is one operation on one resource an API asks for, and the code refused without it.
type need struct {
	typ  kmsg.ACLResourceType
	name string
	op   kmsg.ACLOperation
	deny int16
}

type matrixRow struct {
	name  string
	needs []need
	// setup runs as the super user before each call (may be nil).
	setup func(ctx context.Context, admin *kgo.Client) error
	// call sends the request as cl and returns every error code of the answer.
	call func(ctx context.Context, cl *kgo.Client) ([]int16, error)
	// ok are the codes a permitted call may answer (besides 0); nil: only 0.
	ok []int16
	// anyName: the operation on any resource of the type grants (Kafka's
	// authorizeByResourceType), so an ACL on another name grants too.
	anyName bool
}

func topicNeed(op kmsg.ACLOperation, name string) need {
	return need{kmsg.ACLResourceTypeTopic, name, op, kerr.TopicAuthorizationFailed.Code}
}
func groupNeed(op kmsg.ACLOperation, name string) need {
	return need{kmsg.ACLResourceTypeGroup, name, op, kerr.GroupAuthorizationFailed.Code}
}
func clusterNeed(op kmsg.ACLOperation) need {
	return need{kmsg.ACLResourceTypeCluster, cluster, op, kerr.ClusterAuthorizationFailed.Code}
}
func txnNeed(op kmsg.ACLOperation, name string) need {
	return need{kmsg.ACLResourceTypeTransactionalId, name, op, kerr.TransactionalIDAuthorizationFailed.Code}
}

// send issues req straight to the gateway (no FindCoordinator detour).
func send[R kmsg.Response](ctx context.Context, cl *kgo.Client, req kmsg.Request) (R, error) {
	return direct[R](ctx, cl, req)
}

func codes(cs ...int16) []int16 { return cs }

// sendCodes sends req as cl and returns every error code of the answer: each int16 field named
// ErrorCode, at the top and in every resource, partition, member or result below it, in the
// answer's order. One walk reads every API's answer, so the rows differ only in their requests.
func sendCodes(ctx context.Context, cl *kgo.Client, req kmsg.Request) ([]int16, error) {
	r, err := send[kmsg.Response](ctx, cl, req)
	if err != nil {
		return nil, err
	}
	return appendErrorCodes(nil, reflect.ValueOf(r)), nil
}

func appendErrorCodes(cs []int16, v reflect.Value) []int16 {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			cs = appendErrorCodes(cs, v.Elem())
		}
	case reflect.Slice:
		for i := range v.Len() {
			cs = appendErrorCodes(cs, v.Index(i))
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			switch {
			case !f.IsExported():
			case f.Name == "ErrorCode" && f.Type.Kind() == reflect.Int16:
				cs = append(cs, int16(v.Field(i).Int()))
			default:
				cs = appendErrorCodes(cs, v.Field(i))
			}
		}
	}
	return cs
}

func matrixRows(admin *kgo.Client) []matrixRow {
	const (
		read, write, describe = kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe
		del, create, alter    = kmsg.ACLOperationDelete, kmsg.ACLOperationCreate, kmsg.ACLOperationAlter
		descCfg, alterCfg     = kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs
		idemWrite             = kmsg.ACLOperationIdempotentWrite
	)
	produce := func(topic string) func(context.Context, *kgo.Client) ([]int16, error) {
		return func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			return sendCodes(ctx, cl, txnProduceReq(nil, topic, txnRecordBatch(-1, -1, -1, false, "v")))
		}
	}
	offsetCommit := func(group, topic string) func(context.Context, *kgo.Client) ([]int16, error) {
		return func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrOffsetCommitRequest()
			req.Group, req.Generation = group, -1
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = topic
			rt.Partitions = append(rt.Partitions, kmsg.NewOffsetCommitRequestTopicPartition())
			req.Topics = append(req.Topics, rt)
			return sendCodes(ctx, cl, req)
		}
	}
	// makeGroup gives group a committed offset, so it exists (ListGroups, DeleteGroups,
	// OffsetDelete).
	makeGroup := func(group string) func(context.Context, *kgo.Client) error {
		return func(ctx context.Context, admin *kgo.Client) error {
			cs, err := offsetCommit(group, mxTopic)(ctx, admin)
			if err == nil && slices.ContainsFunc(cs, func(c int16) bool { return c != 0 }) {
				err = fmt.Errorf("commit to %s: %v", group, cs)
			}
			return err
		}
	}
	initPID := func(txnID *string) func(context.Context, *kgo.Client) ([]int16, error) {
		return func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrInitProducerIDRequest()
			req.TransactionalID, req.TransactionTimeoutMillis = txnID, 60000
			return sendCodes(ctx, cl, req)
		}
	}
	findCoord := func(typ int8, key string) func(context.Context, *kgo.Client) ([]int16, error) {
		return func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.CoordinatorType, req.CoordinatorKey, req.CoordinatorKeys = typ, key, []string{key}
			return sendCodes(ctx, cl, req)
		}
	}
	describeConfigs := func(typ kmsg.ConfigResourceType, name string) func(context.Context, *kgo.Client) ([]int16, error) {
		return func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrDescribeConfigsRequest()
			rr := kmsg.NewDescribeConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = typ, name
			req.Resources = append(req.Resources, rr)
			return sendCodes(ctx, cl, req)
		}
	}
	alterConfigs := func(typ kmsg.ConfigResourceType, name, key, value string) func(context.Context, *kgo.Client) ([]int16, error) {
		return func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrAlterConfigsRequest()
			req.ValidateOnly = true
			rr := kmsg.NewAlterConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = typ, name
			c := kmsg.NewAlterConfigsRequestResourceConfig()
			c.Name, c.Value = key, kmsg.StringPtr(value)
			rr.Configs = append(rr.Configs, c)
			req.Resources = append(req.Resources, rr)
			return sendCodes(ctx, cl, req)
		}
	}
	incAlterConfigs := func(typ kmsg.ConfigResourceType, name, key, value string) func(context.Context, *kgo.Client) ([]int16, error) {
		return func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			req.ValidateOnly = true
			rr := kmsg.NewIncrementalAlterConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = typ, name
			c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			c.Name, c.Value = key, kmsg.StringPtr(value)
			rr.Configs = append(rr.Configs, c)
			req.Resources = append(req.Resources, rr)
			return sendCodes(ctx, cl, req)
		}
	}
	groupMember := func(mk func(group string) kmsg.Request) func(string) func(context.Context, *kgo.Client) ([]int16, error) {
		return func(group string) func(context.Context, *kgo.Client) ([]int16, error) {
			return func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
				return sendCodes(ctx, cl, mk(group))
			}
		}
	}
	join := groupMember(func(g string) kmsg.Request {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.ProtocolType, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = g, "consumer", 10000, 10000
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte{0, 0, 0, 0, 0, 0, 0, 0}
		req.Protocols = append(req.Protocols, p)
		return req
	})
	syncG := groupMember(func(g string) kmsg.Request {
		req := kmsg.NewPtrSyncGroupRequest()
		req.Group, req.MemberID, req.Generation = g, "nobody", 1
		return req
	})
	heartbeat := groupMember(func(g string) kmsg.Request {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.MemberID, req.Generation = g, "nobody", 1
		return req
	})
	leave := groupMember(func(g string) kmsg.Request {
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Group, req.MemberID = g, "nobody"
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = "nobody"
		req.Members = append(req.Members, m)
		return req
	})
	pidOf := func(ctx context.Context, admin *kgo.Client) (int64, int16, error) {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID, req.TransactionTimeoutMillis = kmsg.StringPtr(mxTxn), 60000
		r, err := send[*kmsg.InitProducerIDResponse](ctx, admin, req)
		if err == nil && r.ErrorCode != 0 {
			err = kerr.ErrorForCode(r.ErrorCode)
		}
		if err != nil {
			return 0, 0, err
		}
		return r.ProducerID, r.ProducerEpoch, nil
	}
	// The transactional rows use the id's current producer (the super user's
	// InitProducerId) with no transaction begun: a permitted call may then answer
	// INVALID_TXN_STATE (a produce or offset commit to a partition not added).
	txnState := []int16{kerr.InvalidTxnState.Code}
	// The broker keeps no broker configs: altering one is INVALID_REQUEST once authorized.
	brokerCfg := []int16{kerr.InvalidRequest.Code}

	return []matrixRow{
		{name: "Produce", needs: []need{topicNeed(write, mxTopic)}, call: produce(mxTopic)},
		{name: "ProduceTransactional", needs: []need{txnNeed(write, mxTxn), topicNeed(write, mxTopic)}, ok: txnState,
			call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
				pid, epoch, err := pidOf(ctx, admin)
				if err != nil {
					return nil, err
				}
				return sendCodes(ctx, cl, txnProduceReq(kmsg.StringPtr(mxTxn), mxTopic, txnRecordBatch(pid, epoch, 0, true, "v")))
			}},
		{name: "Fetch", needs: []need{topicNeed(read, mxTopic)}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			return sendCodes(ctx, cl, fetchReq(mxTopic))
		}},
		{name: "ListOffsets", needs: []need{topicNeed(describe, mxTopic)}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrListOffsetsRequest()
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = mxTopic
			p := kmsg.NewListOffsetsRequestTopicPartition()
			p.Timestamp = -1
			rt.Partitions = append(rt.Partitions, p)
			req.Topics = append(req.Topics, rt)
			return sendCodes(ctx, cl, req)
		}},
		{name: "MetadataNamed", needs: []need{topicNeed(describe, mxTopic)}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrMetadataRequest()
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr(mxTopic)
			req.Topics = append(req.Topics, mt)
			return sendCodes(ctx, cl, req)
		}},
		{name: "MetadataAll", needs: []need{{kmsg.ACLResourceTypeTopic, mxTopic, describe, hidden}}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			r, err := send[*kmsg.MetadataResponse](ctx, cl, kmsg.NewPtrMetadataRequest())
			if err != nil {
				return nil, err
			}
			for _, t := range r.Topics {
				if t.Topic != nil && *t.Topic == mxTopic {
					return codes(t.ErrorCode), nil
				}
			}
			return codes(hidden), nil
		}},
		{name: "CreateTopicsByTopic", needs: []need{topicNeed(create, mxNewTop)}, ok: codes(kerr.TopicAlreadyExists.Code),
			call: mxCreateTopic(mxNewTop)},
		{name: "CreateTopicsByCluster", needs: []need{{kmsg.ACLResourceTypeCluster, cluster, create, kerr.TopicAuthorizationFailed.Code}},
			ok: codes(kerr.TopicAlreadyExists.Code), call: mxCreateTopic(mxNewTop)},
		{name: "DeleteTopics", needs: []need{topicNeed(del, mxDelTop)},
			setup: func(ctx context.Context, admin *kgo.Client) error {
				req := kmsg.NewPtrCreateTopicsRequest()
				rt := kmsg.NewCreateTopicsRequestTopic()
				rt.Topic, rt.NumPartitions, rt.ReplicationFactor = mxDelTop, 1, 1
				req.Topics = append(req.Topics, rt)
				r, err := send[*kmsg.CreateTopicsResponse](ctx, admin, req)
				if err == nil && r.Topics[0].ErrorCode != 0 && r.Topics[0].ErrorCode != kerr.TopicAlreadyExists.Code {
					err = kerr.ErrorForCode(r.Topics[0].ErrorCode)
				}
				return err
			},
			call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
				req := kmsg.NewPtrDeleteTopicsRequest()
				req.TopicNames = []string{mxDelTop}
				rt := kmsg.NewDeleteTopicsRequestTopic()
				rt.Topic = kmsg.StringPtr(mxDelTop)
				req.Topics = append(req.Topics, rt)
				return sendCodes(ctx, cl, req)
			}},
		{name: "CreatePartitions", needs: []need{topicNeed(alter, mxTopic)}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrCreatePartitionsRequest()
			req.ValidateOnly = true
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = mxTopic, 2
			req.Topics = append(req.Topics, rt)
			return sendCodes(ctx, cl, req)
		}},
		{name: "DeleteRecords", needs: []need{topicNeed(del, mxTopic)}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrDeleteRecordsRequest()
			req.TimeoutMillis = 10000
			rt := kmsg.NewDeleteRecordsRequestTopic()
			rt.Topic = mxTopic
			p := kmsg.NewDeleteRecordsRequestTopicPartition()
			p.Offset = 0
			rt.Partitions = append(rt.Partitions, p)
			req.Topics = append(req.Topics, rt)
			return sendCodes(ctx, cl, req)
		}},
		{name: "OffsetForLeaderEpoch", needs: []need{topicNeed(describe, mxTopic)}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrOffsetForLeaderEpochRequest()
			req.ReplicaID = -1
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = mxTopic
			p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			p.CurrentLeaderEpoch, p.LeaderEpoch = -1, 0
			rt.Partitions = append(rt.Partitions, p)
			req.Topics = append(req.Topics, rt)
			return sendCodes(ctx, cl, req)
		}},
		{name: "DescribeConfigsTopic", needs: []need{topicNeed(descCfg, mxTopic)}, call: describeConfigs(kmsg.ConfigResourceTypeTopic, mxTopic)},
		{name: "DescribeConfigsBroker", needs: []need{clusterNeed(descCfg)}, call: describeConfigs(kmsg.ConfigResourceTypeBroker, "0")},
		{name: "AlterConfigsTopic", needs: []need{topicNeed(alterCfg, mxTopic)}, call: alterConfigs(kmsg.ConfigResourceTypeTopic, mxTopic, "retention.ms", "86400000")},
		{name: "IncrementalAlterConfigsTopic", needs: []need{topicNeed(alterCfg, mxTopic)}, call: incAlterConfigs(kmsg.ConfigResourceTypeTopic, mxTopic, "retention.ms", "86400000")},
		{name: "AlterConfigsBroker", needs: []need{clusterNeed(alterCfg)}, call: alterConfigs(kmsg.ConfigResourceTypeBroker, "0", "log.retention.ms", "86400000"), ok: brokerCfg},
		{name: "IncrementalAlterConfigsBroker", needs: []need{clusterNeed(alterCfg)}, call: incAlterConfigs(kmsg.ConfigResourceTypeBroker, "0", "log.retention.ms", "86400000"), ok: brokerCfg},
		{name: "DescribeProducers", needs: []need{topicNeed(read, mxTopic)}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrDescribeProducersRequest()
			rt := kmsg.NewDescribeProducersRequestTopic()
			rt.Topic, rt.Partitions = mxTopic, []int32{0}
			req.Topics = append(req.Topics, rt)
			return sendCodes(ctx, cl, req)
		}},
		{name: "FindCoordinatorGroup", needs: []need{groupNeed(describe, "mx-fc-group")}, call: findCoord(0, "mx-fc-group")},
		{name: "FindCoordinatorTxn", needs: []need{txnNeed(describe, mxTxn)}, call: findCoord(1, mxTxn)},
		{name: "JoinGroup", needs: []need{groupNeed(read, "mx-join")}, call: join("mx-join"), ok: codes(kerr.MemberIDRequired.Code)},
		{name: "SyncGroup", needs: []need{groupNeed(read, "mx-sync")}, call: syncG("mx-sync"), ok: codes(kerr.UnknownMemberID.Code)},
		{name: "Heartbeat", needs: []need{groupNeed(read, "mx-hb")}, call: heartbeat("mx-hb"), ok: codes(kerr.UnknownMemberID.Code)},
		{name: "LeaveGroup", needs: []need{groupNeed(read, "mx-leave")}, call: leave("mx-leave"), ok: codes(kerr.UnknownMemberID.Code)},
		{name: "OffsetCommit", needs: []need{groupNeed(read, "mx-oc"), topicNeed(read, mxTopic)}, call: offsetCommit("mx-oc", mxTopic)},
		{name: "OffsetFetch", needs: []need{groupNeed(describe, "mx-of"), topicNeed(describe, mxTopic)}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Group = "mx-of"
			rt := kmsg.NewOffsetFetchRequestTopic()
			rt.Topic, rt.Partitions = mxTopic, []int32{0}
			req.Topics = append(req.Topics, rt)
			rg := kmsg.NewOffsetFetchRequestGroup()
			rg.Group = "mx-of"
			gt := kmsg.NewOffsetFetchRequestGroupTopic()
			gt.Topic, gt.Partitions = mxTopic, []int32{0}
			rg.Topics = append(rg.Topics, gt)
			req.Groups = append(req.Groups, rg)
			return sendCodes(ctx, cl, req)
		}},
		{name: "OffsetDelete", needs: []need{groupNeed(del, "mx-od"), topicNeed(read, mxTopic)}, setup: makeGroup("mx-od"),
			call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
				req := kmsg.NewPtrOffsetDeleteRequest()
				req.Group = "mx-od"
				rt := kmsg.NewOffsetDeleteRequestTopic()
				rt.Topic = mxTopic
				rt.Partitions = append(rt.Partitions, kmsg.NewOffsetDeleteRequestTopicPartition())
				req.Topics = append(req.Topics, rt)
				return sendCodes(ctx, cl, req)
			}},
		{name: "DescribeGroups", needs: []need{groupNeed(describe, "mx-dg")}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrDescribeGroupsRequest()
			req.Groups = []string{"mx-dg"}
			return sendCodes(ctx, cl, req)
		}},
		{name: "ConsumerGroupHeartbeat", needs: []need{groupNeed(read, "mx-cgh")}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.Group, req.MemberID, req.RebalanceTimeoutMillis = "mx-cgh", "mx-member", 10000
			req.SubscribedTopicNames, req.Topics = []string{mxTopic}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			return sendCodes(ctx, cl, req)
		}},
		{name: "ConsumerGroupDescribe", needs: []need{groupNeed(describe, "mx-cgd")}, ok: codes(kerr.GroupIDNotFound.Code), call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrConsumerGroupDescribeRequest()
			req.Groups = []string{"mx-cgd"}
			return sendCodes(ctx, cl, req)
		}},
		{name: "ListGroupsByGroup", needs: []need{{kmsg.ACLResourceTypeGroup, "mx-lg", describe, hidden}}, setup: makeGroup("mx-lg"), call: listGroups("mx-lg")},
		{name: "ListGroupsByCluster", needs: []need{{kmsg.ACLResourceTypeCluster, cluster, describe, hidden}}, setup: makeGroup("mx-lg"), call: listGroups("mx-lg")},
		{name: "DeleteGroups", needs: []need{groupNeed(del, "mx-del")}, setup: makeGroup("mx-del"), call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrDeleteGroupsRequest()
			req.Groups = []string{"mx-del"}
			return sendCodes(ctx, cl, req)
		}},
		{name: "InitProducerIdIdempotentByCluster", needs: []need{clusterNeed(idemWrite)}, call: initPID(nil)},
		{name: "InitProducerIdIdempotentByTopicWrite", needs: []need{{kmsg.ACLResourceTypeTopic, mxTopic, write, kerr.ClusterAuthorizationFailed.Code}}, call: initPID(nil), anyName: true},
		{name: "InitProducerIdTransactional", needs: []need{txnNeed(write, mxTxn)}, call: initPID(kmsg.StringPtr(mxTxn)), ok: txnState},
		{name: "AddPartitionsToTxn", needs: []need{txnNeed(write, mxTxn), topicNeed(write, mxTopic)}, ok: txnState,
			call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
				pid, epoch, err := pidOf(ctx, admin)
				if err != nil {
					return nil, err
				}
				return sendCodes(ctx, cl, addPartsReq(mxTxn, pid, epoch, mxTopic))
			}},
		{name: "AddOffsetsToTxn", needs: []need{txnNeed(write, mxTxn), groupNeed(read, "mx-txg")}, ok: txnState,
			call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
				pid, epoch, err := pidOf(ctx, admin)
				if err != nil {
					return nil, err
				}
				req := kmsg.NewPtrAddOffsetsToTxnRequest()
				req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = mxTxn, pid, epoch, "mx-txg"
				return sendCodes(ctx, cl, req)
			}},
		{name: "TxnOffsetCommit", needs: []need{txnNeed(write, mxTxn), groupNeed(read, "mx-txg"), topicNeed(read, mxTopic)}, ok: txnState,
			call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
				pid, epoch, err := pidOf(ctx, admin)
				if err != nil {
					return nil, err
				}
				return sendCodes(ctx, cl, txnCommitReq(mxTxn, "mx-txg", pid, epoch, 0, mxTopic))
			}},
		{name: "EndTxn", needs: []need{txnNeed(write, mxTxn)}, ok: txnState,
			call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
				pid, epoch, err := pidOf(ctx, admin)
				if err != nil {
					return nil, err
				}
				req := kmsg.NewPtrEndTxnRequest()
				req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = mxTxn, pid, epoch, true
				return sendCodes(ctx, cl, req)
			}},
		{name: "DescribeTransactions", needs: []need{txnNeed(describe, mxTxn)}, setup: func(ctx context.Context, admin *kgo.Client) error {
			_, _, err := pidOf(ctx, admin)
			return err
		}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrDescribeTransactionsRequest()
			req.TransactionalIDs = []string{mxTxn}
			return sendCodes(ctx, cl, req)
		}},
		{name: "ListTransactions", needs: []need{{kmsg.ACLResourceTypeTransactionalId, mxTxn, describe, hidden}}, setup: func(ctx context.Context, admin *kgo.Client) error {
			_, _, err := pidOf(ctx, admin)
			return err
		}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			r, err := send[*kmsg.ListTransactionsResponse](ctx, cl, kmsg.NewPtrListTransactionsRequest())
			if err != nil {
				return nil, err
			}
			for _, s := range r.TransactionStates {
				if s.TransactionalID == mxTxn {
					return codes(r.ErrorCode), nil
				}
			}
			return codes(r.ErrorCode, hidden), nil
		}},
		{name: "DescribeLogDirs", needs: []need{{kmsg.ACLResourceTypeCluster, cluster, describe, hidden}}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			r, err := send[*kmsg.DescribeLogDirsResponse](ctx, cl, kmsg.NewPtrDescribeLogDirsRequest())
			if err != nil {
				return nil, err
			}
			if r.ErrorCode == 0 && len(r.Dirs) == 0 { // before v3 a refusal is an empty answer
				return codes(hidden), nil
			}
			return codes(r.ErrorCode), nil
		}},
		{name: "DescribeClientQuotas", needs: []need{clusterNeed(descCfg)}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			return sendCodes(ctx, cl, kmsg.NewPtrDescribeClientQuotasRequest())
		}},
		{name: "AlterClientQuotas", needs: []need{clusterNeed(alterCfg)}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrAlterClientQuotasRequest()
			req.ValidateOnly = true
			e := kmsg.NewAlterClientQuotasRequestEntry()
			c := kmsg.NewAlterClientQuotasRequestEntryEntity()
			c.Type, c.Name = "user", kmsg.StringPtr("mx-user")
			e.Entity = append(e.Entity, c)
			o := kmsg.NewAlterClientQuotasRequestEntryOp()
			o.Key, o.Value = "producer_byte_rate", 1024
			e.Ops = append(e.Ops, o)
			req.Entries = append(req.Entries, e)
			return sendCodes(ctx, cl, req)
		}},
		{name: "DescribeUserScramCredentials", needs: []need{clusterNeed(describe)}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			return sendCodes(ctx, cl, kmsg.NewPtrDescribeUserSCRAMCredentialsRequest())
		}},
		{name: "AlterUserScramCredentials", needs: []need{clusterNeed(alter)}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
			u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
			u.Name, u.Mechanism, u.Iterations = "mx-user", 1, 4096
			u.Salt, u.SaltedPassword = make([]byte, 16), make([]byte, 32)
			req.Upsertions = append(req.Upsertions, u)
			return sendCodes(ctx, cl, req)
		}},
		{name: "DescribeAcls", needs: []need{clusterNeed(describe)}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrDescribeACLsRequest()
			req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
			req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			return sendCodes(ctx, cl, req)
		}},
		{name: "CreateAcls", needs: []need{clusterNeed(alter)}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			// An ACL for bob on a resource no row uses: harmless to the matrix.
			return sendCodes(ctx, cl, createACLReq(kmsg.ACLResourceTypeTopic, "mx-unused",
				kmsg.ACLResourcePatternTypeLiteral, "User:bob", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow))
		}},
		{name: "DeleteAcls", needs: []need{clusterNeed(alter)}, call: func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
			req := kmsg.NewPtrDeleteACLsRequest()
			f := kmsg.NewDeleteACLsRequestFilter()
			f.ResourceType, f.ResourceName, f.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.StringPtr("mx-unused"), kmsg.ACLResourcePatternTypeLiteral
			f.Principal, f.Operation, f.PermissionType = kmsg.StringPtr("User:bob"), kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			req.Filters = append(req.Filters, f)
			return sendCodes(ctx, cl, req)
		}},
	}
}

func mxCreateTopic(name string) func(context.Context, *kgo.Client) ([]int16, error) {
	return func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.ValidateOnly = true
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
		req.Topics = append(req.Topics, rt)
		return sendCodes(ctx, cl, req)
	}
}

func listGroups(group string) func(context.Context, *kgo.Client) ([]int16, error) {
	return func(ctx context.Context, cl *kgo.Client) ([]int16, error) {
		r, err := send[*kmsg.ListGroupsResponse](ctx, cl, kmsg.NewPtrListGroupsRequest())
		if err != nil {
			return nil, err
		}
		for _, g := range r.Groups {
			if g.Group == group {
				return codes(r.ErrorCode), nil
			}
		}
		return codes(r.ErrorCode, hidden), nil
	}
}

func createACLReq(typ kmsg.ACLResourceType, name string, pattern kmsg.ACLResourcePatternType, principal string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) *kmsg.CreateACLsRequest {
	req := kmsg.NewPtrCreateACLsRequest()
	c := kmsg.NewCreateACLsRequestCreation()
	c.ResourceType, c.ResourceName, c.ResourcePatternType = typ, name, pattern
	c.Principal, c.Host, c.Operation, c.PermissionType = principal, "*", op, perm
	req.Creations = append(req.Creations, c)
	return req
}

// grant is one ACL the matrix creates for the principal under test.
type grant struct {
	typ     kmsg.ACLResourceType
	name    string
	pattern kmsg.ACLResourcePatternType
	op      kmsg.ACLOperation
	perm    kmsg.ACLPermissionType
}

// patterned is n's resource named for pattern: LITERAL the name, PREFIXED a proper prefix of
// it, WILDCARD the LITERAL "*". The cluster only has its literal name.
func patterned(n need, pattern string, op kmsg.ACLOperation) grant {
	g := grant{typ: n.typ, name: n.name, pattern: kmsg.ACLResourcePatternTypeLiteral, op: op, perm: kmsg.ACLPermissionTypeAllow}
	if n.typ == kmsg.ACLResourceTypeCluster {
		return g
	}
	switch pattern {
	case "PREFIXED":
		g.name, g.pattern = n.name[:len(n.name)/2+1], kmsg.ACLResourcePatternTypePrefixed
	case "WILDCARD":
		g.name = "*"
	}
	return g
}

// impliedBy are the operations Kafka documents as implying op (besides op and ALL).
func impliedBy(op kmsg.ACLOperation) []kmsg.ACLOperation {
	switch op {
	case kmsg.ACLOperationDescribe:
		return []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter}
	case kmsg.ACLOperationDescribeConfigs:
		return []kmsg.ACLOperation{kmsg.ACLOperationAlterConfigs}
	}
	return nil
}

func TestACLMatrix(t *testing.T) {
	ctx := context.Background()
	addr := startTxnServer(t, true)
	// Kafka 3.0's versions: Fetch v12 names its topics; plus the KIP-848 consumer group APIs.
	versions := kversion.V3_0_0()
	versions.SetMaxKeyVersion(kmsg.ConsumerGroupHeartbeat.Int16(), 1)
	versions.SetMaxKeyVersion(kmsg.ConsumerGroupDescribe.Int16(), 1)
	clientFor := func(user string) *kgo.Client {
		return kafkaclients.KgoClient(t, addr, kgo.SASL(scram.Auth{User: user, Pass: user + "-pw"}.AsSha256Mechanism()),
			kgo.MaxVersions(versions), kgo.DisableIdempotentWrite())
	}
	admin, alice := clientFor("admin"), clientFor("alice")

	if err := createTopicNow(ctx, admin, mxTopic); err != nil {
		t.Fatal(err)
	}

	resetACLs := func(t *testing.T) {
		t.Helper()
		req := kmsg.NewPtrDeleteACLsRequest()
		f := kmsg.NewDeleteACLsRequestFilter()
		f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
		f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		req.Filters = append(req.Filters, f)
		r, err := send[*kmsg.DeleteACLsResponse](ctx, admin, req)
		if err != nil || r.Results[0].ErrorCode != 0 {
			t.Fatalf("delete all ACLs: %v %+v", err, r)
		}
	}
	apply := func(t *testing.T, gs []grant) {
		t.Helper()
		resetACLs(t)
		for _, g := range gs {
			r, err := send[*kmsg.CreateACLsResponse](ctx, admin, createACLReq(g.typ, g.name, g.pattern, "User:alice", g.op, g.perm))
			if err != nil || r.Results[0].ErrorCode != 0 {
				t.Fatalf("create ACL %+v: %v %+v", g, err, r)
			}
		}
	}
	run := func(t *testing.T, row matrixRow, cl *kgo.Client) []int16 {
		t.Helper()
		if row.setup != nil {
			if err := row.setup(ctx, admin); err != nil {
				t.Fatalf("setup: %v", err)
			}
		}
		cs, err := row.call(ctx, cl)
		if err != nil {
			t.Fatalf("call: %v", err)
		}
		if len(cs) == 0 {
			t.Fatal("answer has no codes")
		}
		return cs
	}
	expectAllowed := func(t *testing.T, row matrixRow, cl *kgo.Client, what string) {
		t.Helper()
		for _, c := range run(t, row, cl) {
			if c != 0 {
				t.Logf("%s: permitted, answered %v", what, kerr.ErrorForCode(c))
			}
			if c != 0 && !slices.Contains(row.ok, c) {
				t.Errorf("%s: code %d (%v), want success", what, c, kerr.ErrorForCode(c))
			}
		}
	}
	expectDenied := func(t *testing.T, row matrixRow, want int16, what string) {
		t.Helper()
		if cs := run(t, row, alice); !slices.Contains(cs, want) {
			t.Errorf("%s: codes %v, want %d (%v)", what, cs, want, kerr.ErrorForCode(want))
		}
	}

	for _, row := range matrixRows(admin) {
		t.Run(row.name, func(t *testing.T) {
			t.Run("NoACL", func(t *testing.T) {
				apply(t, nil)
				expectDenied(t, row, row.needs[0].deny, "no ACL")
			})
			for _, pattern := range []string{"LITERAL", "PREFIXED", "WILDCARD"} {
				t.Run(pattern, func(t *testing.T) {
					all := func() []grant {
						var gs []grant
						for _, n := range row.needs {
							gs = append(gs, patterned(n, pattern, n.op))
						}
						return gs
					}
					apply(t, all())
					expectAllowed(t, row, alice, "all needs granted")
					// Each need missing alone is refused with its own code.
					for i, n := range row.needs {
						gs := all()
						apply(t, slices.Delete(gs, i, i+1))
						expectDenied(t, row, n.deny, fmt.Sprintf("without %v on %v %s", n.op, n.typ, n.name))
					}
					// The ACL on a different resource of the type does not grant.
					if pattern != "WILDCARD" {
						for i, n := range row.needs {
							if n.typ == kmsg.ACLResourceTypeCluster {
								continue
							}
							gs := all()
							gs[i].name = "zz-other"
							apply(t, gs)
							if row.anyName {
								expectAllowed(t, row, alice, fmt.Sprintf("%v on another %v", n.op, n.typ))
							} else {
								expectDenied(t, row, n.deny, fmt.Sprintf("%v on another %v", n.op, n.typ))
							}
						}
					}
					// A DENY of the operation beats the ALLOW.
					for i, n := range row.needs {
						deny := patterned(n, pattern, n.op)
						deny.perm = kmsg.ACLPermissionTypeDeny
						apply(t, append(all(), deny))
						expectDenied(t, row, n.deny, fmt.Sprintf("DENY %v on %v %s", n.op, n.typ, n.name))
						if i == 0 && n.op != kmsg.ACLOperationAll {
							// DENY ALL beats the ALLOW too.
							deny.op = kmsg.ACLOperationAll
							apply(t, append(all(), deny))
							expectDenied(t, row, n.deny, "DENY ALL")
						}
					}
				})
			}
			t.Run("Implied", func(t *testing.T) {
				for i, n := range row.needs {
					for _, op := range append(impliedBy(n.op), kmsg.ACLOperationAll) {
						var gs []grant
						for j, m := range row.needs {
							if j == i {
								gs = append(gs, patterned(m, "LITERAL", op))
							} else {
								gs = append(gs, patterned(m, "LITERAL", m.op))
							}
						}
						apply(t, gs)
						expectAllowed(t, row, alice, fmt.Sprintf("%v implies %v on %v", op, n.op, n.typ))
					}
				}
			})
			t.Run("SuperUser", func(t *testing.T) {
				apply(t, nil)
				expectAllowed(t, row, admin, "super user")
			})
		})
	}
}

func createTopicNow(ctx context.Context, admin *kgo.Client, name string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
	req.Topics = append(req.Topics, rt)
	r, err := send[*kmsg.CreateTopicsResponse](ctx, admin, req)
	if err == nil && r.Topics[0].ErrorCode != 0 {
		err = kerr.ErrorForCode(r.Topics[0].ErrorCode)
	}
	return err
}
