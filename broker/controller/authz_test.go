package controller

import (
	"context"
	"errors"
	"testing"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/mesh/key"
)

func actingAs(ctx context.Context, principal string) context.Context {
	return brokerop.WithActing(ctx, brokerop.Acting{Principal: principal, Host: "10.0.0.7"})
}

func refusal(err error) int16 {
	var r *brokerop.RefusedError
	if errors.As(err, &r) {
		return r.Code
	}
	return 0
}

// A broker with the authorizer on checks the principal a gateway acts for against the ACLs
// on the metadata quorum, whatever the gateway decided: User:bob without an ACL is refused
// TOPIC_AUTHORIZATION_FAILED over the mesh, is served as soon as CreateAcls is applied (no
// restart), and is refused again once it is deleted. A node the broker trusts but that has
// no gateway role (an admitted broker) may not act for a principal; one given the gateway
// role in the metadata may.
func TestStartNodeAuthorizesPrincipals(t *testing.T) {
	ctx := context.Background()
	gw := endpointWith(t, key.GenerateSecretKey(), "127.0.0.1:0")
	defer gw.Close()
	other := endpointWith(t, key.GenerateSecretKey(), "127.0.0.1:0") // admitted as a broker, no gateway role
	defer other.Close()
	gw2 := endpointWith(t, key.GenerateSecretKey(), "127.0.0.1:0") // gateway role from the metadata
	defer gw2.Close()
	ep := endpointWith(t, key.GenerateSecretKey(), "127.0.0.1:0")
	defer ep.Close()
	n, err := StartNode(ctx, NodeConfig{Broker: broker.Config{Dir: t.TempDir()}, Endpoint: ep,
		Trust: func(k key.PublicKey) bool { return k == gw.NodeID() }, Logger: testLog(), ClusterSecurity: true,
		Authorizer: AuthorizerConfig{Enabled: true, SuperUsers: []string{"User:admin"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for _, a := range []brokerop.QuorumAdminReq{{Action: brokerop.QuorumAllow, MeshID: other.NodeID().String()},
		{Action: ActionAllowGateway, MeshID: gw2.NodeID().String()}} {
		cctx, cancel := ctx5()
		r, err := n.Controller.QuorumAdmin(cctx, &a)
		cancel()
		if err != nil || r.ErrorCode != 0 {
			t.Fatalf("%s: %+v %v", a.Action, r, err)
		}
	}
	c := newGatewayCaller(gw, ep.Addr())
	eventually(t, "create the topic (the gateway's own call)", func() error {
		cctx, cancel := ctx5()
		defer cancel()
		r, err := c.CreateTopics(cctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "orders", NumPartitions: 1, ReplicationFactor: 1}}})
		if err == nil && r.Topics[0].ErrorCode != 0 && r.Topics[0].ErrorCode != 36 {
			return errors.New(r.Topics[0].ErrorMessage)
		}
		return err
	})
	produce := func(c brokerop.Service, principal string) error {
		cctx, cancel := ctx5()
		defer cancel()
		if principal != "" {
			cctx = actingAs(cctx, principal)
		}
		r, err := c.Produce(cctx, &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{{Topic: "orders", Records: batch("x")}}})
		if err == nil && r.Partitions[0].ErrorCode != 0 {
			return errors.New("produce error code")
		}
		return err
	}
	// The topic is served once the broker applied it (the gateway's own call).
	eventually(t, "the topic is served", func() error { return produce(c, "") })
	if err := produce(c, "User:bob"); refusal(err) != 29 {
		t.Fatalf("bob without an ACL: %v", err)
	}
	if err := produce(c, "User:admin"); err != nil {
		t.Fatalf("super user: %v", err)
	}
	// The ACL goes to the quorum (through the gateway, as the super user): in force at once.
	cctx, cancel := ctx5()
	defer cancel()
	grant := brokerop.AclBinding{ResourceType: int8(acl.ResourceTopic), ResourceName: "orders", PatternType: int8(acl.PatternLiteral),
		Principal: "User:bob", Host: "*", Operation: int8(acl.OpWrite), Permission: int8(acl.PermissionAllow)}
	if _, err := c.CreateAcls(actingAs(cctx, "User:bob"), &brokerop.CreateAclsReq{Creations: []brokerop.AclBinding{grant}}); refusal(err) != 31 {
		t.Fatalf("bob granting himself: %v", err)
	}
	if r, err := c.CreateAcls(actingAs(cctx, "User:admin"), &brokerop.CreateAclsReq{Creations: []brokerop.AclBinding{grant}}); err != nil || r.Results[0].ErrorCode != 0 {
		t.Fatalf("grant: %+v %v", r, err)
	}
	if err := produce(c, "User:bob"); err != nil {
		t.Fatalf("bob with WRITE: %v", err)
	}
	// The same principal named by a node without the gateway role: refused.
	if err := produce(newGatewayCaller(other, ep.Addr()), "User:bob"); refusal(err) != 31 {
		t.Fatalf("principal from an admitted broker: %v", err)
	}
	// A node with the gateway role in the cluster's metadata may act for bob.
	if err := produce(newGatewayCaller(gw2, ep.Addr()), "User:bob"); err != nil {
		t.Fatalf("principal from a gateway-role node: %v", err)
	}
	if r, err := c.DeleteAcls(actingAs(cctx, "User:admin"), &brokerop.DeleteAclsReq{Filters: []brokerop.AclFilter{anyACL}}); err != nil || len(r.Results[0].Deleted) != 1 {
		t.Fatalf("revoke: %+v %v", r, err)
	}
	if err := produce(c, "User:bob"); refusal(err) != 29 {
		t.Fatalf("bob after the ACL was deleted: %v", err)
	}
}
