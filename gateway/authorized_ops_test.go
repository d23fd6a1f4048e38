package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// Kafka's authorized-operations bitfields: bit n for operation code n.
const (
	bitRead, bitWrite, bitCreate, bitDelete, bitAlter, bitDescribe            = 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8
	bitClusterAction, bitDescribeConfigs, bitAlterConfigs, bitIdempotentWrite = 1 << 9, 1 << 10, 1 << 11, 1 << 12
	notRequested                                                              = -2147483648
	allTopicOps                                                               = bitRead | bitWrite | bitCreate | bitDelete | bitAlter | bitDescribe | bitDescribeConfigs | bitAlterConfigs
	allGroupOps                                                               = bitRead | bitDescribe | bitDelete
	allClusterOps                                                             = bitCreate | bitClusterAction | bitDescribeConfigs | bitAlterConfigs | bitIdempotentWrite | bitAlter | bitDescribe
)

// TestAuthorizedOperations: Metadata (topic and cluster), DescribeGroups and DescribeCluster
// answer the principal's authorized operations when asked, as Kafka computes them (implied
// DESCRIBE included; the cluster's only with DESCRIBE on it, else 0), every supported
// operation for a super user, and Kafka's "not requested" value otherwise.
func TestAuthorizedOperations(t *testing.T) {
	s := startACLServer(t)
	admin := kadm.NewClient(s.client(t, "admin"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "a"); err != nil {
		t.Fatal(err)
	}
	mustACLs(t, admin, kadm.NewACLs().Allow("User:alice").Topics("a").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
	mustACLs(t, admin, kadm.NewACLs().Allow("User:alice").Groups("g").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))
	mustACLs(t, admin, kadm.NewACLs().Allow("User:alice").Clusters().Operations(kadm.OpIdempotentWrite))

	metadata := func(cl *kgo.Client, include bool) *kmsg.MetadataResponse {
		t.Helper()
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("a")
		req.Topics = []kmsg.MetadataRequestTopic{rt}
		req.IncludeTopicAuthorizedOperations, req.IncludeClusterAuthorizedOperations = include, include
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("Metadata: %v %+v", err, resp)
		}
		return resp
	}
	describeGroup := func(cl *kgo.Client) int32 {
		t.Helper()
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups, req.IncludeAuthorizedOperations = []string{"g"}, true
		resp, err := req.RequestWith(ctx, cl)
		// g has no members: GROUP_ID_NOT_FOUND from v6, with the principal's operations.
		if err != nil || len(resp.Groups) != 1 || (resp.Groups[0].ErrorCode != 0 && resp.Groups[0].ErrorCode != kerr.GroupIDNotFound.Code) {
			t.Fatalf("DescribeGroups: %v %+v", err, resp)
		}
		return resp.Groups[0].AuthorizedOperations
	}
	describeCluster := func(cl *kgo.Client, include bool) int32 {
		t.Helper()
		req := kmsg.NewPtrDescribeClusterRequest()
		req.IncludeClusterAuthorizedOperations = include
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || resp.ErrorCode != 0 {
			t.Fatalf("DescribeCluster: %v %+v", err, resp)
		}
		return resp.ClusterAuthorizedOperations
	}
	// Metadata v8–v10 carry the cluster's operations (v11 dropped them for DescribeCluster).
	v10 := kgo.MaxVersions(kversion.V2_7_0())
	alice := s.client(t, "alice", v10)
	md := metadata(alice, true)
	if got, want := md.Topics[0].AuthorizedOperations, int32(bitWrite|bitDescribe); got != want {
		t.Errorf("alice on topic a: %b, want %b (WRITE and the DESCRIBE it implies)", got, want)
	}
	if got := md.AuthorizedOperations; got != 0 {
		t.Errorf("alice on the cluster without DESCRIBE: %b, want 0 (as Kafka answers)", got)
	}
	if got, want := describeGroup(alice), int32(bitRead|bitDescribe); got != want {
		t.Errorf("alice on group g: %b, want %b", got, want)
	}
	aliceNow := s.client(t, "alice") // DescribeCluster is newer than Metadata v10
	if got := describeCluster(aliceNow, true); got != 0 {
		t.Errorf("alice on the cluster without DESCRIBE (DescribeCluster): %b, want 0", got)
	}
	mustACLs(t, admin, kadm.NewACLs().Allow("User:alice").Clusters().Operations(kadm.OpDescribe))
	if got, want := metadata(alice, true).AuthorizedOperations, int32(bitIdempotentWrite|bitDescribe); got != want {
		t.Errorf("alice on the cluster with DESCRIBE: %b, want %b", got, want)
	}
	if got, want := describeCluster(aliceNow, true), int32(bitIdempotentWrite|bitDescribe); got != want {
		t.Errorf("alice on the cluster with DESCRIBE (DescribeCluster): %b, want %b", got, want)
	}
	if got := describeCluster(aliceNow, false); got != notRequested {
		t.Errorf("DescribeCluster not requested: %d", got)
	}

	adm := s.client(t, "admin", v10)
	md = metadata(adm, true)
	if got := md.Topics[0].AuthorizedOperations; got != allTopicOps {
		t.Errorf("super user on topic a: %b, want %b", got, allTopicOps)
	}
	if got := md.AuthorizedOperations; got != allClusterOps {
		t.Errorf("super user on the cluster: %b, want %b", got, allClusterOps)
	}
	if got := describeGroup(adm); got != allGroupOps {
		t.Errorf("super user on group g: %b, want %b", got, allGroupOps)
	}

	md = metadata(alice, false)
	if md.Topics[0].AuthorizedOperations != notRequested || md.AuthorizedOperations != notRequested {
		t.Errorf("not requested: topic %d, cluster %d, want %d", md.Topics[0].AuthorizedOperations, md.AuthorizedOperations, notRequested)
	}
}
