package cluster

import (
	"context"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// SCRAM credentials live with the controller (its credentials file, the metadata quorum
// later), so both ops go there.

// DescribeUserScramCredentials asks the controller.
func (c *Cluster) DescribeUserScramCredentials(ctx context.Context, req *brokerop.DescribeUserScramCredentialsReq) (*brokerop.DescribeUserScramCredentialsResp, error) {
	return c.ctl().DescribeUserScramCredentials(ctx, req)
}

// AlterUserScramCredentials changes the controller's credentials.
func (c *Cluster) AlterUserScramCredentials(ctx context.Context, req *brokerop.AlterUserScramCredentialsReq) (*brokerop.AlterUserScramCredentialsResp, error) {
	return c.ctl().AlterUserScramCredentials(ctx, req)
}
