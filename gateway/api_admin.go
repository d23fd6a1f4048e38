package gateway

// Topic and cluster administration: CreatePartitions (key 37, v0–3), DescribeConfigs (32,
// v0–4), AlterConfigs (33, v0–2), IncrementalAlterConfigs (44, v0–1), DescribeCluster (60,
// v0–1). Each translates kmsg ↔ brokerop and reaches the backend's AdminBackend methods; a
// backend without them (brokerop.ErrUnsupported) is answered with UNSUPPORTED_VERSION-free errors (INVALID_REQUEST per
// resource) rather than a panic. Kafka error codes and messages are the broker's.
//
//   - DescribeConfigs: synonyms (v1+) and documentation (v3+) only when asked; v0 gets
//     IsDefault, v1+ the source. Config names null or empty mean every config.
//   - DescribeCluster: the brokers carry the gateway's advertised host and port; cluster
//     authorized operations are not computed (-2147483648, as Kafka without the flag).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
)

const errInvalidRequest int16 = 42

// adminCall runs one AdminBackend call (op is the method, as AdminBackend.AlterConfigs) and
// reduces "no admin support", call failures and an answer whose entry count (entries, if
// not nil) is not n to the Kafka error code to answer every entry with (0 when resp is
// valid).
func adminCall[Req, Resp any](ctx context.Context, r *Request, op func(AdminBackend, context.Context, *Req) (*Resp, error), req *Req, n int, entries func(*Resp) int) (*Resp, int16) {
	resp, err := op(r.Server.Backend(), ctx, req)
	if unsupported(err) {
		return nil, errInvalidRequest
	}
	if err == nil && entries != nil && entries(resp) != n {
		err = errShortAnswer
	}
	if err != nil {
		return nil, BackendErrorCode(err)
	}
	return resp, 0
}

func handleCreatePartitions(ctx context.Context, r *Request, req *kmsg.CreatePartitionsRequest, resp *kmsg.CreatePartitionsResponse) {
	resp.Topics = make([]kmsg.CreatePartitionsResponseTopic, len(req.Topics))
	breq := &brokerop.CreatePartitionsReq{ValidateOnly: req.ValidateOnly}
	authorized := r.authorizedFn(ctx)
	sentAt, denied := allowedEntries(len(req.Topics), func(i int) int16 { // ALTER on the topic
		if authorized(acl.AlterTopic, req.Topics[i].Topic) {
			return 0
		}
		return kerr.TopicAuthorizationFailed.Code
	})
	for i, t := range req.Topics {
		resp.Topics[i].Default()
		resp.Topics[i].Topic = t.Topic
		if sentAt[i] < 0 {
			continue
		}
		bt := brokerop.CreatePartitionsTopic{Name: t.Topic, Count: t.Count}
		for _, a := range t.Assignment {
			bt.Assignments = append(bt.Assignments, a.Replicas)
		}
		breq.Topics = append(breq.Topics, bt)
	}
	var bresp *brokerop.CreatePartitionsResp
	var code int16
	if len(breq.Topics) > 0 {
		bresp, code = adminCall(ctx, r, AdminBackend.CreatePartitions, breq, len(breq.Topics),
			func(b *brokerop.CreatePartitionsResp) int { return len(b.Topics) })
	}
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		switch {
		case sentAt[i] < 0:
			rt.ErrorCode = denied[i]
		case code != 0:
			rt.ErrorCode = code
		default:
			bt := &bresp.Topics[sentAt[i]]
			rt.ErrorCode, rt.ErrorMessage = bt.ErrorCode, nilIfEmpty(bt.ErrorMessage)
		}
	}
}

func handleDescribeConfigs(ctx context.Context, r *Request, req *kmsg.DescribeConfigsRequest, resp *kmsg.DescribeConfigsResponse) {
	v := req.GetVersion()
	resp.Resources = make([]kmsg.DescribeConfigsResponseResource, len(req.Resources))
	breq := &brokerop.DescribeConfigsReq{
		IncludeSynonyms:      req.IncludeSynonyms && v >= 1,
		IncludeDocumentation: req.IncludeDocumentation && v >= 3,
	}
	authorized := r.authorizedFn(ctx)
	sentAt, denied := allowedEntries(len(req.Resources), func(i int) int16 {
		return configAuthz(authorized, acl.DescribeTopicConfigs, acl.DescribeClusterConfigs, req.Resources[i].ResourceType, req.Resources[i].ResourceName)
	})
	for i, rs := range req.Resources {
		resp.Resources[i].Default()
		resp.Resources[i].ResourceType, resp.Resources[i].ResourceName = rs.ResourceType, rs.ResourceName
		if sentAt[i] >= 0 {
			breq.Resources = append(breq.Resources, brokerop.DescribeConfigsResource{Type: int8(rs.ResourceType), Name: rs.ResourceName, ConfigNames: rs.ConfigNames})
		}
	}
	var bresp *brokerop.DescribeConfigsResp
	var code int16
	if len(breq.Resources) > 0 {
		bresp, code = adminCall(ctx, r, AdminBackend.DescribeConfigs, breq, len(breq.Resources),
			func(b *brokerop.DescribeConfigsResp) int { return len(b.Resources) })
	}
	for i := range resp.Resources {
		rr := &resp.Resources[i]
		if sentAt[i] < 0 {
			rr.ErrorCode = denied[i]
			continue
		}
		if code != 0 {
			rr.ErrorCode = code
			continue
		}
		br := &bresp.Resources[sentAt[i]]
		rr.ErrorCode, rr.ErrorMessage = br.ErrorCode, nilIfEmpty(br.ErrorMessage)
		for _, c := range br.Configs {
			rc := kmsg.NewDescribeConfigsResponseResourceConfig()
			rc.Name, rc.Value, rc.ReadOnly, rc.IsSensitive = c.Name, c.Value, c.ReadOnly, c.IsSensitive
			rc.IsDefault = c.IsDefault
			rc.Source = kmsg.ConfigSource(c.Source)
			rc.ConfigType = kmsg.ConfigType(c.ConfigType)
			rc.Documentation = nilIfEmpty(c.Documentation)
			for _, s := range c.Synonyms {
				rs := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				rs.Name, rs.Value, rs.Source = s.Name, s.Value, kmsg.ConfigSource(s.Source)
				rc.ConfigSynonyms = append(rc.ConfigSynonyms, rs)
			}
			rr.Configs = append(rr.Configs, rc)
		}
	}
}

func handleAlterConfigs(ctx context.Context, r *Request, req *kmsg.AlterConfigsRequest, resp *kmsg.AlterConfigsResponse) {
	resp.Resources = make([]kmsg.AlterConfigsResponseResource, len(req.Resources))
	breq := &brokerop.AlterConfigsReq{ValidateOnly: req.ValidateOnly}
	authorized := r.authorizedFn(ctx)
	sentAt, denied := allowedEntries(len(req.Resources), func(i int) int16 {
		return configAuthz(authorized, acl.AlterTopicConfigs, acl.AlterClusterConfigs, req.Resources[i].ResourceType, req.Resources[i].ResourceName)
	})
	for i, rs := range req.Resources {
		resp.Resources[i].Default()
		resp.Resources[i].ResourceType, resp.Resources[i].ResourceName = rs.ResourceType, rs.ResourceName
		if sentAt[i] < 0 {
			continue
		}
		br := brokerop.AlterConfigsResource{Type: int8(rs.ResourceType), Name: rs.ResourceName}
		for _, c := range rs.Configs {
			br.Configs = append(br.Configs, brokerop.AlterConfig{Name: c.Name, Value: c.Value})
		}
		breq.Resources = append(breq.Resources, br)
	}
	var bresp *brokerop.AlterConfigsResp
	var code int16
	if len(breq.Resources) > 0 {
		bresp, code = adminCall(ctx, r, AdminBackend.AlterConfigs, breq, len(breq.Resources), alterEntries)
	}
	fillAlterResults(resp.Resources, sentAt, denied, bresp, code, func(rr *kmsg.AlterConfigsResponseResource, code int16, msg *string) {
		rr.ErrorCode, rr.ErrorMessage = code, msg
	})
}

func handleIncrementalAlterConfigs(ctx context.Context, r *Request, req *kmsg.IncrementalAlterConfigsRequest, resp *kmsg.IncrementalAlterConfigsResponse) {
	resp.Resources = make([]kmsg.IncrementalAlterConfigsResponseResource, len(req.Resources))
	breq := &brokerop.IncrementalAlterConfigsReq{ValidateOnly: req.ValidateOnly}
	authorized := r.authorizedFn(ctx)
	sentAt, denied := allowedEntries(len(req.Resources), func(i int) int16 {
		return configAuthz(authorized, acl.AlterTopicConfigs, acl.AlterClusterConfigs, req.Resources[i].ResourceType, req.Resources[i].ResourceName)
	})
	for i, rs := range req.Resources {
		resp.Resources[i].Default()
		resp.Resources[i].ResourceType, resp.Resources[i].ResourceName = rs.ResourceType, rs.ResourceName
		if sentAt[i] < 0 {
			continue
		}
		br := brokerop.IncrementalAlterConfigsResource{Type: int8(rs.ResourceType), Name: rs.ResourceName}
		for _, c := range rs.Configs {
			br.Configs = append(br.Configs, brokerop.IncrementalAlterConfig{Name: c.Name, Op: int8(c.Op), Value: c.Value})
		}
		breq.Resources = append(breq.Resources, br)
	}
	var bresp *brokerop.AlterConfigsResp
	var code int16
	if len(breq.Resources) > 0 {
		bresp, code = adminCall(ctx, r, AdminBackend.IncrementalAlterConfigs, breq, len(breq.Resources), alterEntries)
	}
	fillAlterResults(resp.Resources, sentAt, denied, bresp, code, func(rr *kmsg.IncrementalAlterConfigsResponseResource, code int16, msg *string) {
		rr.ErrorCode, rr.ErrorMessage = code, msg
	})
}

func alterEntries(b *brokerop.AlterConfigsResp) int { return len(b.Resources) }

// fillAlterResults sets each resource's outcome: code for all when the call failed (code != 0).
func fillAlterResults[R any](out []R, sentAt []int, denied []int16, bresp *brokerop.AlterConfigsResp, code int16, set func(*R, int16, *string)) {
	for i := range out {
		switch {
		case sentAt[i] < 0:
			set(&out[i], denied[i], nil)
		case code != 0:
			set(&out[i], code, nil)
		default:
			br := &bresp.Resources[sentAt[i]]
			set(&out[i], br.ErrorCode, nilIfEmpty(br.ErrorMessage))
		}
	}
}

// allowedEntries decides n request entries: denied(i) is the error of a refused entry (0:
// allowed). It returns, per entry, its index among the allowed ones (-1: refused) and the
// errors.
func allowedEntries(n int, denied func(i int) int16) (sentAt []int, codes []int16) {
	sentAt, codes = make([]int, n), make([]int16, n)
	k := 0
	for i := range n {
		if codes[i] = denied(i); codes[i] != 0 {
			sentAt[i] = -1
			continue
		}
		sentAt[i] = k
		k++
	}
	return sentAt, codes
}

// configAuthz authorizes a config resource: a topic (2) with the topic need on the topic, a
// broker (4) or broker logger (8) with the cluster need on the cluster, a group (32) with
// the topic need's operation on the group.
func configAuthz(authorized func(acl.Need, string) bool, topic, cluster acl.Need, typ kmsg.ConfigResourceType, name string) int16 {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		if !authorized(topic, name) {
			return kerr.TopicAuthorizationFailed.Code
		}
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
		if !authorized(cluster, acl.ClusterName) {
			return kerr.ClusterAuthorizationFailed.Code
		}
	case kmsg.ConfigResourceTypeGroupConfig:
		if !authorized(acl.Need{Op: topic.Op, Type: acl.ResourceGroup}, name) {
			return kerr.GroupAuthorizationFailed.Code
		}
	}
	return 0
}

func handleDescribeCluster(ctx context.Context, r *Request, req *kmsg.DescribeClusterRequest, resp *kmsg.DescribeClusterResponse) {
	bresp, code := adminCall(ctx, r, AdminBackend.DescribeCluster, &brokerop.DescribeClusterReq{}, 0, nil)
	if code != 0 {
		resp.ErrorCode = code
		return
	}
	resp.ErrorCode, resp.ErrorMessage = bresp.ErrorCode, nilIfEmpty(bresp.ErrorMessage)
	resp.ClusterID, resp.ControllerID = bresp.ClusterID, bresp.ControllerID
	resp.ClusterAuthorizedOperations = -2147483648 // Kafka's "not requested"
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = r.clusterOps(ctx)
	}
	host, port := r.Advertised()
	for _, b := range bresp.Brokers {
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port = b.NodeID, host, port
		resp.Brokers = append(resp.Brokers, rb)
	}
}
