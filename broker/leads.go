package broker

// Leads reports whether this broker leads the replicated partition and serves it now (its
// raft group runs here, this replica is the leader and has applied its own term's first
// entry): a Produce, Fetch or ListOffsets of it is answered here rather than with
// NOT_LEADER_OR_FOLLOWER. Single-owner partitions report false: which broker owns one is
// the metadata quorum's knowledge, not the broker's. An embedded Kafka listener (the direct
// data path) serves the requests whose partitions all report true in process and routes the
// rest to their leaders.
func (b *Broker) Leads(topic string, partition int32) bool {
	p := b.lookup(topic, partition)
	if p == nil || !p.replicated() {
		return false
	}
	g := p.group.Load()
	if g == nil {
		return false
	}
	serving, _, _ := g.leaderState()
	return serving
}
