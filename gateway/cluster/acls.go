package cluster

import (
	"context"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// ACLs live with the controller, as SCRAM credentials do (its ACLs file, the metadata quorum
// later), so the three ops go there.

// DescribeAcls asks the controller.
func (c *Cluster) DescribeAcls(ctx context.Context, req *brokerop.DescribeAclsReq) (*brokerop.DescribeAclsResp, error) {
	return c.ctl().DescribeAcls(ctx, req)
}

// CreateAcls stores bindings on the controller.
func (c *Cluster) CreateAcls(ctx context.Context, req *brokerop.CreateAclsReq) (*brokerop.CreateAclsResp, error) {
	return c.ctl().CreateAcls(ctx, req)
}

// DeleteAcls deletes bindings on the controller.
func (c *Cluster) DeleteAcls(ctx context.Context, req *brokerop.DeleteAclsReq) (*brokerop.DeleteAclsResp, error) {
	return c.ctl().DeleteAcls(ctx, req)
}
