package cluster

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// Over the mesh: ACLs created through one gateway are kept by the controller broker and
// decide requests on another gateway, which loads them over the mesh.
func TestACLsOverTheMesh(t *testing.T) {
	gw1, gw2 := newEP(t), newEP(t)
	bs := startBrokers(t, 2, gw1, gw2)
	authz := gateway.AuthorizerConfig{Enabled: true, SuperUsers: []string{gateway.AnonymousPrincipal}}
	_, addr1 := serveKafka(t, gateway.Config{Backend: clusterFor(t, gw1, bs), AdvertisedHost: "127.0.0.1", Authorizer: authz})
	ctx := timeoutCtx(t, 30*time.Second)
	cl1 := kafkaclients.KgoClient(t, addr1)
	adm := kadm.NewClient(cl1)
	if _, err := adm.CreateTopics(ctx, 1, 1, nil, "vis", "hid"); err != nil {
		t.Fatal(err)
	}
	res, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow(gateway.AnonymousPrincipal).Topics("vis").Operations(kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral))
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("create ACL over the mesh: %v %+v", err, res)
	}

	// The second gateway has no super users: ANONYMOUS sees only the topic it may describe.
	_, addr2 := serveKafka(t, gateway.Config{Backend: clusterFor(t, gw2, bs), AdvertisedHost: "127.0.0.1", Authorizer: gateway.AuthorizerConfig{Enabled: true}})
	cl2 := kafkaclients.KgoClient(t, addr2)
	if names := kafkaclients.MetadataTopics(ctx, t, cl2); !slices.Equal(names, []string{"vis"}) {
		t.Fatalf("second gateway shows %v, want [vis]", names)
	}
}
