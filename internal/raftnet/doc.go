// Package raftnet is an in-memory network of raft peers for tests: one Net, one End per raft
// id, each End delivering the messages sent to its id to the receiver attached to it through
// a bounded queue and a goroutine, so Send never blocks. Nodes can be isolated, links cut and
// messages dropped by a filter; a message is checked when sent and again when delivered, so a
// cut also loses what was in flight. Close stops every delivery goroutine and waits for them.
//
// The network is generic over the message type M and the receiver type R, so the metadata
// quorum (broker/quorum: *raftpb.Message into a *Node) and the partition replicas
// (broker/replica: a group-tagged message into an *Engine) share one implementation; each
// supplies a Config saying how to read a message's ends, copy it, step it into a receiver and
// report an undelivered message or a snapshot's fate back to the sender.
//
// The package depends on the standard library only.
package raftnet
