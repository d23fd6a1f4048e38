package broker

import "errors"

// defaultRaftStorage is Config.RaftStorage's default: raftstore.Open, once package
// broker/replica/raftstore is available (nil until then: Config.RaftStorage is required).
var defaultRaftStorage OpenRaftStorage

// syncStore makes every write to the partition logs durable. Until wal.Store has a
// store-wide Commit it syncs the logs of the raft groups one by one (each a journal group
// commit; concurrent ones share fsyncs).
func (b *Broker) syncStore() error {
	var errs []error
	for _, t := range *b.topics.Load() {
		for _, p := range *t.parts.Load() {
			if g := p.group.Load(); g != nil {
				if err := g.log.Sync(g.log.NextOffset()); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}
