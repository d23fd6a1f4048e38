package brokerop

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/meshkafka/meshkafka/broker/acl"
)

// A header naming a principal is on the wire with FlagPrincipal and decodes back; a header
// without one is byte for byte the header as it was before the extension, and decodes with
// no principal.
func TestPrincipalHeaderExtension(t *testing.T) {
	body := &ProduceReq{Acks: -1, Partitions: []ProducePartition{{Topic: "t", Records: bytes.Repeat([]byte{7}, 5000)}}}
	plain := RequestHeader{RequestID: 3, DeadlineMs: 9, TraceParent: "tp"}
	old, err := EncodeRequest(OpProduce, plain, body)
	if err != nil {
		t.Fatal(err)
	}
	if old[0] != byte(OpProduce) {
		t.Fatalf("tag %#x without a principal", old[0])
	}
	// The old header layout: the four fields, then the body.
	want := plain.AppendPostcard(nil)
	_, payload, _ := ReadFrame(bytes.NewReader(old), 0)
	if !bytes.HasPrefix(payload, want) || !bytes.Equal(payload[len(want):], body.AppendPostcard(nil)) {
		t.Fatal("a frame without a principal is not the pre-extension layout")
	}
	h, _, err := DecodeRequest(Code(old[0]), payload)
	if err != nil || h != plain {
		t.Fatalf("old frame: %+v %v", h, err)
	}

	acting := plain
	acting.Principal, acting.ClientHost = "User:bob", "10.0.0.7"
	for _, refMin := range []int{0, 1 << 20} { // records by reference, and copied
		bufs, err := EncodeRequestBuffers(OpProduce, acting, body, refMin)
		if err != nil {
			t.Fatal(err)
		}
		frame := bytes.Join(bufs, nil)
		whole, _ := EncodeRequest(OpProduce, acting, body)
		if !bytes.Equal(frame, whole) {
			t.Fatalf("refMin %d: vectored frame differs from EncodeRequest", refMin)
		}
		tag, payload, err := ReadFrame(bytes.NewReader(frame), 0)
		if err != nil || tag != OpProduce|FlagPrincipal || OpOf(tag) != OpProduce {
			t.Fatalf("tag %#x, %v", tag, err)
		}
		h, got, err := DecodeRequest(tag, payload)
		if err != nil || h != acting || got.(*ProduceReq).Partitions[0].Topic != "t" {
			t.Fatalf("decoded %+v %v", h, err)
		}
		// Read without the flag, the extension is trailing garbage: the flag is what says it is there.
		if _, _, err := DecodeRequest(OpProduce, payload); !errors.Is(err, ErrMalformed) {
			t.Fatalf("extension read as the body: %v", err)
		}
	}
	// The flag with an empty principal is not canonical.
	bad := append(plain.AppendPostcard(nil), 0, 0)
	bad = append(bad, (&HeartbeatReq{Group: "g"}).AppendPostcard(nil)...)
	if _, _, err := DecodeRequest(OpHeartbeat|FlagPrincipal, bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("flag without a principal: %v", err)
	}
}

// A StatusUnauthorized answer carries the Kafka error code; other statuses carry none.
func TestRefusalCodeInResponseHeader(t *testing.T) {
	h := ResponseHeader{RequestID: 4, Status: StatusUnauthorized, Message: "no", ErrorCode: 29}
	frame, err := EncodeResponse(OpProduce, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, payload, _ := ReadFrame(bytes.NewReader(frame), 0)
	got, err := DecodeResponse(payload, new(ProduceResp))
	if err != nil || got != h {
		t.Fatalf("%+v %v", got, err)
	}
	h.ErrorCode = 0
	frame, _ = EncodeResponse(OpProduce, h, nil)
	_, payload, _ = ReadFrame(bytes.NewReader(frame), 0)
	if got, err := DecodeResponse(payload, new(ProduceResp)); err != nil || got != h {
		t.Fatalf("no code: %+v %v", got, err)
	}
	h = ResponseHeader{RequestID: 4, Status: StatusInternal, Message: "x", ErrorCode: 29}
	frame, _ = EncodeResponse(OpProduce, h, nil)
	_, payload, _ = ReadFrame(bytes.NewReader(frame), 0)
	if got, err := DecodeResponse(payload, new(ProduceResp)); err != nil || got.ErrorCode != 0 {
		t.Fatalf("code on another status: %+v %v", got, err)
	}
}

// Every op's request is mapped: a principal with no ACLs (and no allow-if-none) is refused
// every op except the few that ask nothing, each with the code of the resource type asked;
// a super user is allowed every op.
func TestAuthorizeOpCoversEveryOp(t *testing.T) {
	askNothing := map[Code]bool{OpDescribeCluster: true, OpListGroups: true, OpListTransactions: true,
		OpClusterBrokers: true, OpPlacement: true}
	brokersOwn := map[Code]bool{OpQuorumJoin: true, OpQuorumAdmin: true, OpUpdatePartition: true,
		OpTransferPartitionLeader: true, OpCompleteReassignment: true, OpWriteMarkers: true, OpVerifyTxn: true}
	none := acl.New(acl.Config{SuperUsers: []string{"User:admin"}}, nil)
	for _, s := range Specs() {
		req := exampleRequest(s)
		r := AuthorizeOp(req, "User:bob", func(q acl.Ask) bool { return none.Allows("User:bob", "h", q) })
		if askNothing[s.Code] {
			if r != nil {
				t.Errorf("%s: refused %v, asks nothing", s.Name, r)
			}
			continue
		}
		if r == nil {
			t.Errorf("%s: allowed with no ACLs", s.Name)
			continue
		}
		if r.Code != 29 && r.Code != 30 && r.Code != 31 && r.Code != 53 {
			t.Errorf("%s: code %d", s.Name, r.Code)
		}
		// Only the brokers' own ops ask CLUSTER_ACTION (the default): a client op falling
		// through to it is missing from the map.
		if action := strings.Contains(r.Message, "CLUSTER_ACTION"); action != brokersOwn[s.Code] {
			t.Errorf("%s: refused %q", s.Name, r.Message)
		}
		if r := AuthorizeOp(req, "User:admin", func(q acl.Ask) bool { return none.Allows("User:admin", "h", q) }); r != nil {
			t.Errorf("%s: super user refused: %v", s.Name, r)
		}
	}
}

// exampleRequest is s's request naming one of each resource it can name.
func exampleRequest(s Spec) any {
	req := s.NewRequest()
	switch r := req.(type) {
	case *ProduceReq:
		r.Partitions = []ProducePartition{{Topic: "t"}}
	case *FetchReq:
		r.Partitions = []FetchPartition{{Topic: "t"}}
	case *ListOffsetsReq:
		r.Partitions = []ListOffsetsPartition{{Topic: "t"}}
	case *MetadataReq:
		r.Topics = []string{"t"}
	case *CreateTopicsReq:
		r.Topics = []CreateTopic{{Name: "t"}}
	case *DeleteTopicsReq:
		r.Topics = []string{"t"}
	case *CreatePartitionsReq:
		r.Topics = []CreatePartitionsTopic{{Name: "t"}}
	case *DescribeConfigsReq:
		r.Resources = []DescribeConfigsResource{{Type: ResourceTopic, Name: "t"}}
	case *AlterConfigsReq:
		r.Resources = []AlterConfigsResource{{Type: ResourceBroker, Name: "1"}}
	case *IncrementalAlterConfigsReq:
		r.Resources = []IncrementalAlterConfigsResource{{Type: ResourceTopic, Name: "t"}}
	case *DeleteRecordsReq:
		r.Partitions = []DeleteRecordsPartition{{Topic: "t"}}
	case *OffsetForLeaderEpochReq:
		r.Partitions = []OffsetForLeaderEpochPartition{{Topic: "t"}}
	case *DescribeGroupsReq:
		r.Groups = []string{"g"}
	case *ConsumerGroupDescribeReq:
		r.Groups = []string{"g"}
	case *DeleteGroupsReq:
		r.Groups = []string{"g"}
	case *ShareGroupDescribeReq:
		r.Groups = []string{"g"}
	case *DescribeShareGroupOffsetsReq:
		r.Groups = []ShareOffsetsGroup{{Group: "g", Partitions: []ShareTP{{Topic: "t"}}}}
	case *ShareFetchReq:
		r.Group, r.Partitions = "g", []ShareFetchPartition{{Topic: "t"}}
	case *DescribeTransactionsReq:
		r.TransactionalIDs = []string{"x"}
	case *DescribeProducersReq:
		r.Partitions = []TxnPartition{{Topic: "t"}}
	}
	return req
}

// BenchmarkAuthorizeProduce: the broker's decision for one 8-partition produce, against a
// few ACLs, decided afresh and from acl.Cached (what the server uses).
func BenchmarkAuthorizeProduce(b *testing.B) {
	req := &ProduceReq{}
	for i := range 8 {
		req.Partitions = append(req.Partitions, ProducePartition{Topic: "orders", Partition: int32(i)})
	}
	var bs []acl.Binding
	for _, t := range []string{"orders", "payments", "audit"} {
		bs = append(bs, acl.Binding{ResourceType: acl.ResourceTopic, ResourceName: t, PatternType: acl.PatternLiteral,
			Principal: "User:bob", Host: "*", Operation: acl.OpWrite, Permission: acl.PermissionAllow})
	}
	bs = append(bs, acl.Binding{ResourceType: acl.ResourceTopic, ResourceName: "ord", PatternType: acl.PatternPrefixed,
		Principal: "User:eve", Host: "*", Operation: acl.OpAll, Permission: acl.PermissionDeny})
	a := acl.New(acl.Config{}, bs)
	c := acl.NewCached(a, 0)
	for _, bc := range []struct {
		name  string
		allow func(acl.Ask) bool
	}{
		{"uncached", func(q acl.Ask) bool { return a.Allows("User:bob", "10.0.0.7", q) }},
		{"cached", func(q acl.Ask) bool { return c.Allows("User:bob", "10.0.0.7", q) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := AuthorizeOp(req, "User:bob", bc.allow); r != nil {
					b.Fatal(r)
				}
			}
		})
	}
}
