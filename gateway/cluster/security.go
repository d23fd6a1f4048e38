package cluster

import (
	"context"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// SCRAM credentials are controller ops (see acls.go): any broker in quorum mode, the fixed
// controller in legacy mode.

// DescribeUserScramCredentials asks the controller.
func (c *Cluster) DescribeUserScramCredentials(ctx context.Context, req *brokerop.DescribeUserScramCredentialsReq) (*brokerop.DescribeUserScramCredentialsResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).DescribeUserScramCredentials)
}

// AlterUserScramCredentials changes the controller's credentials.
func (c *Cluster) AlterUserScramCredentials(ctx context.Context, req *brokerop.AlterUserScramCredentialsReq) (*brokerop.AlterUserScramCredentialsResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).AlterUserScramCredentials)
}
