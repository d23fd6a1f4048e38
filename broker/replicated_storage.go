package broker

import (
	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/meshkafka/meshkafka/broker/replica/raftstore"
	"github.com/meshkafka/meshkafka/wal"
)

// The engine and storage retention needs (replicated_retention.go); a Replication or
// RaftStorage without these parts gets no retention on its partitions.
var (
	_ AtApplier     = (*replica.Engine)(nil)
	_ RaftCompactor = (*raftstore.Store)(nil)
)

// defaultRaftStorage is Config.RaftStorage's default: the partition's raft log in its
// wal.Log (package broker/replica/raftstore).
func defaultRaftStorage(l *wal.Log, describe func([]byte) (int32, int64, error)) (RaftStorage, error) {
	return raftstore.Open(l, raftstore.Options{Describe: describe})
}

// syncStore makes every write to the partition logs durable: one commit of the journal
// (group commit), however many logs wrote.
func (b *Broker) syncStore() error { return b.store.Commit() }
