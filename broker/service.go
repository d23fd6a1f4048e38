package broker

import "github.com/meshkafka/meshkafka/broker/brokerop"

// Service is the broker as a brokerop.Service: data, admin, producer-id and share-group ops from b, group
// ops from groups (a group.Coordinator; nil: the group ops answer brokerop.ErrUnsupported).
func (b *Broker) Service(groups brokerop.GroupService) brokerop.Service {
	return brokerop.Parts{Data: b, Admin: b, Groups: groups, Producers: b, Share: b}
}
