package controller

import (
	"context"
	"testing"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/wal"
)

// A broker that kept SCRAM credentials, ACLs and client quotas in files and is started as
// (the founder of) a cluster imports them into the quorum: nothing it stored is lost, and they
// are served from the quorum.
func TestStartNodeImportsFileSecurity(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	sec, err := broker.OpenFileSecurity(wal.OSFS(), dir)
	if err != nil {
		t.Fatal(err)
	}
	creds, acls := sec.Credentials, sec.ACLs
	salted := make([]byte, 32)
	if r, err := creds.AlterUserScramCredentials(ctx, &brokerop.AlterUserScramCredentialsReq{Upsertions: []brokerop.ScramUpsertion{
		{Name: "alice", Mechanism: 1, Iterations: 4096, Salt: []byte("salt"), SaltedPassword: salted}}}); err != nil || r.Results[0].ErrorCode != 0 {
		t.Fatalf("%+v %v", r, err)
	}
	binding := brokerop.AclBinding{ResourceType: int8(acl.ResourceTopic), ResourceName: "t", PatternType: int8(acl.PatternLiteral),
		Principal: "User:alice", Host: "*", Operation: int8(acl.OpWrite), Permission: int8(acl.PermissionAllow)}
	if r, err := acls.CreateAcls(ctx, &brokerop.CreateAclsReq{Creations: []brokerop.AclBinding{binding}}); err != nil || r.Results[0].ErrorCode != 0 {
		t.Fatalf("%+v %v", r, err)
	}
	b, err := broker.Open(broker.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	name := "alice"
	if r, err := b.AlterClientQuotas(ctx, &brokerop.AlterClientQuotasReq{Entries: []brokerop.AlterClientQuotasEntry{{
		Entity: []brokerop.QuotaEntityPart{{Type: "user", Name: &name}}, Ops: []brokerop.QuotaOp{{Key: "producer_byte_rate", Value: "2048"}}}}}); err != nil || r.Entries[0].ErrorCode != 0 {
		t.Fatalf("%+v %v", r, err)
	}
	b.Close()

	n, _, c := startGatewayNode(t, NodeConfig{Broker: broker.Config{Dir: dir},
		Security: broker.Security{Credentials: creds, ACLs: acls}, ClusterSecurity: true})
	if st := n.Controller.state(); len(st.ScramUsers()) != 1 || len(st.ACLs()) != 1 || len(st.Quotas()) != 1 {
		t.Fatalf("quorum after import: %+v %+v %+v", st.ScramUsers(), st.ACLs(), st.Quotas())
	}
	var users *brokerop.DescribeUserScramCredentialsResp
	eventually(t, "credentials from the quorum", func() error {
		cctx, cancel := ctx5()
		defer cancel()
		users, err = c.DescribeUserScramCredentials(cctx, &brokerop.DescribeUserScramCredentialsReq{Users: []string{"alice"}})
		return err
	})
	want, _ := creds.DescribeUserScramCredentials(ctx, &brokerop.DescribeUserScramCredentialsReq{Users: []string{"alice"}})
	if len(users.Users) != 1 || users.Users[0].ErrorCode != 0 || !sameCred(users.Users[0].Credentials[0], want.Users[0].Credentials[0]) {
		t.Fatalf("alice from the quorum: %+v, file %+v", users, want)
	}
	cctx, cancel := ctx5()
	defer cancel()
	da, err := c.DescribeAcls(cctx, &brokerop.DescribeAclsReq{Filter: anyACL})
	if err != nil || len(da.Bindings) != 1 || da.Bindings[0] != binding {
		t.Fatalf("ACLs from the quorum: %+v %v", da, err)
	}
	dq, err := c.DescribeClientQuotas(cctx, &brokerop.DescribeClientQuotasReq{})
	if err != nil || len(dq.Entries) != 1 || dq.Entries[0].Values[0].Value != "2048" {
		t.Fatalf("quotas from the quorum: %+v %v", dq, err)
	}
	// A change now goes to the quorum, not the file.
	if r, err := c.DeleteAcls(cctx, &brokerop.DeleteAclsReq{Filters: []brokerop.AclFilter{anyACL}}); err != nil || len(r.Results[0].Deleted) != 1 {
		t.Fatalf("delete: %+v %v", r, err)
	}
	if fa, _ := acls.DescribeAcls(ctx, &brokerop.DescribeAclsReq{Filter: anyACL}); len(fa.Bindings) != 1 {
		t.Fatalf("the file changed: %+v", fa)
	}
	if len(n.Controller.state().ACLs()) != 0 {
		t.Fatal("the quorum still has the deleted ACL")
	}
}

func TestRoleActionFor(t *testing.T) {
	for _, c := range []struct {
		action, role, want string
		ok                 bool
	}{
		{"allow", "", "allow", true}, {"allow", "broker", "allow", true}, {"allow", "gateway", ActionAllowGateway, true},
		{"disallow", "admin", ActionDisallowAdmin, true}, {"add", "gateway", "", false}, {"allow", "root", "", false},
	} {
		got, err := RoleActionFor(c.action, c.role)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("%s -role %q: %q %v", c.action, c.role, got, err)
		}
	}
}
