package gateway

// DeleteTopics (key 20), v0–6.
//
//   - v0–v5 name topics; v6 may name them by id (resolved via the cache; an unknown id is
//     UNKNOWN_TOPIC_ID). The backend purges the topics' data.
//   - A backend failure answers every topic with BackendErrorCode(err).

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/kafkawire"
)

var errShortAnswer = errors.New("gateway: backend answered a different number of entries")

func handleDeleteTopics(ctx context.Context, r *Request, req *kmsg.DeleteTopicsRequest, resp *kmsg.DeleteTopicsResponse) {
	type entry struct {
		name string
		id   [16]byte
	}
	var entries []entry
	if req.Version < 6 {
		for _, n := range req.TopicNames {
			entries = append(entries, entry{name: n})
		}
	} else {
		for _, t := range req.Topics {
			e := entry{id: t.TopicID}
			if t.Topic != nil {
				e.name = *t.Topic
			} else {
				e.name = r.Server.topics.names(ctx, [][16]byte{t.TopicID})[0]
			}
			entries = append(entries, e)
		}
	}
	breq := &brokerop.DeleteTopicsReq{}
	authorized := r.authorizedFn(ctx)
	denied := map[string]bool{} // no DELETE: TOPIC_AUTHORIZATION_FAILED
	for _, e := range entries {
		if e.name != "" && !authorized(acl.DeleteTopic, e.name) {
			denied[e.name] = true
		}
	}
	for _, e := range entries {
		if e.name != "" && !denied[e.name] {
			breq.Topics = append(breq.Topics, e.name)
		}
	}
	var bresp *brokerop.DeleteTopicsResp
	var err error
	if len(breq.Topics) > 0 {
		bresp, err = r.Server.Backend().DeleteTopics(ctx, breq)
		if err == nil && len(bresp.Topics) != len(breq.Topics) {
			err = errShortAnswer
		}
	}
	k := 0
	for _, e := range entries {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.TopicID = e.id
		switch {
		case e.name == "":
			rt.ErrorCode = kafkawire.ErrUnknownTopicID
		case denied[e.name]:
			rt.Topic, rt.ErrorCode = kmsg.StringPtr(e.name), kerr.TopicAuthorizationFailed.Code
		case err != nil:
			rt.Topic, rt.ErrorCode = kmsg.StringPtr(e.name), BackendErrorCode(err)
			k++
		default:
			bt := &bresp.Topics[k]
			k++
			rt.Topic, rt.ErrorCode = kmsg.StringPtr(e.name), bt.ErrorCode
			if bt.ErrorCode == 0 {
				r.Server.topics.forget(e.name)
			}
			if bt.TopicID != ([16]byte{}) {
				rt.TopicID = bt.TopicID
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
}
