package cluster

import (
	"context"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// ACLs, like SCRAM credentials and client quotas, are controller ops: in quorum mode any
// broker takes them and forwards them to the quorum leader, where brokers started as a
// cluster keep them as cluster metadata (package broker/controller, security.go); in legacy
// mode the fixed controller keeps them in its files.

// DescribeAcls asks the controller.
func (c *Cluster) DescribeAcls(ctx context.Context, req *brokerop.DescribeAclsReq) (*brokerop.DescribeAclsResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).DescribeAcls)
}

// CreateAcls stores bindings on the controller.
func (c *Cluster) CreateAcls(ctx context.Context, req *brokerop.CreateAclsReq) (*brokerop.CreateAclsResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).CreateAcls)
}

// DeleteAcls deletes bindings on the controller.
func (c *Cluster) DeleteAcls(ctx context.Context, req *brokerop.DeleteAclsReq) (*brokerop.DeleteAclsResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).DeleteAcls)
}
