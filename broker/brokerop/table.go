package brokerop

import "reflect"

// Spec describes one op: its code, a name for spans and logs, and its request and response types.
type Spec struct {
	Code Code
	Name string
	Req  reflect.Type
	Resp reflect.Type
}

// NewRequest returns a pointer to a zero request struct of this op.
func (s Spec) NewRequest() any { return reflect.New(s.Req).Interface() }

// NewResponse returns a pointer to a zero response struct of this op.
func (s Spec) NewResponse() any { return reflect.New(s.Resp).Interface() }

var specs = map[Code]Spec{}

func register[Req, Resp any](c Code, name string) {
	if old, dup := specs[c]; dup {
		panic("brokerop: op code " + name + " collides with " + old.Name)
	}
	specs[c] = Spec{Code: c, Name: name, Req: reflect.TypeFor[Req](), Resp: reflect.TypeFor[Resp]()}
}

func init() {
	register[ProduceReq, ProduceResp](OpProduce, "produce")
	register[FetchReq, FetchResp](OpFetch, "fetch")
	register[ListOffsetsReq, ListOffsetsResp](OpListOffsets, "list_offsets")
	register[DeleteTopicsReq, DeleteTopicsResp](OpDeleteTopics, "delete_topics")
	register[MetadataReq, MetadataResp](OpMetadata, "metadata")
	register[CreateTopicsReq, CreateTopicsResp](OpCreateTopics, "create_topics")
	register[JoinGroupReq, JoinGroupResp](OpJoinGroup, "join_group")
	register[SyncGroupReq, SyncGroupResp](OpSyncGroup, "sync_group")
	register[HeartbeatReq, HeartbeatResp](OpHeartbeat, "heartbeat")
	register[LeaveGroupReq, LeaveGroupResp](OpLeaveGroup, "leave_group")
	register[OffsetCommitReq, OffsetCommitResp](OpOffsetCommit, "offset_commit")
	register[OffsetFetchReq, OffsetFetchResp](OpOffsetFetch, "offset_fetch")
	register[ListGroupsReq, ListGroupsResp](OpListGroups, "list_groups")
	register[DescribeGroupsReq, DescribeGroupsResp](OpDescribeGroups, "describe_groups")
	register[DeleteGroupsReq, DeleteGroupsResp](OpDeleteGroups, "delete_groups")
	register[OffsetDeleteReq, OffsetDeleteResp](OpOffsetDelete, "offset_delete")
	register[InitProducerIDReq, InitProducerIDResp](OpInitProducerID, "init_producer_id")
}

// Lookup returns the spec of op code c.
func Lookup(c Code) (Spec, bool) {
	s, ok := specs[c]
	return s, ok
}

// Specs returns every registered op.
func Specs() []Spec {
	out := make([]Spec, 0, len(specs))
	for _, s := range specs {
		out = append(out, s)
	}
	return out
}

func reflectTypeOf(p any) reflect.Type   { return reflect.TypeOf(p).Elem() }
func reflectValueOf(p any) reflect.Value { return reflect.ValueOf(p).Elem() }
