package broker

import (
	"context"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// Service is the broker as a brokerop.Service: data, admin, producer-id and share-group ops from b, group
// ops from groups (a group.Coordinator; nil: the group ops answer brokerop.ErrUnsupported),
// whose ListGroups also lists b's share groups.
func (b *Broker) Service(groups brokerop.GroupService) brokerop.Service {
	if groups != nil {
		groups = shareListing{groups, b}
	}
	return brokerop.Parts{Data: b, Admin: b, Groups: groups, Producers: b, Share: b}
}

// shareListing is a group service whose ListGroups adds the broker's share groups, as the
// controller's does (broker/controller ListGroups).
type shareListing struct {
	brokerop.GroupService
	b *Broker
}

func (s shareListing) ListGroups(ctx context.Context, req *brokerop.ListGroupsReq) (*brokerop.ListGroupsResp, error) {
	resp, err := s.GroupService.ListGroups(ctx, req)
	if err != nil || resp.ErrorCode != 0 {
		return resp, err
	}
	return resp, s.b.AddShareGroups(req, resp)
}
