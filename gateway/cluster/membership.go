package cluster

import "github.com/meshkafka/meshkafka/mesh/key"

// Membership (issue #17 item 4): the control topic is open to any node, so a digest is
// believed only from a member. The cluster's members are its seeds and, in quorum mode, the
// quorum's registered brokers (ClusterBrokers): partitions are placed by the quorum leader on
// registered brokers only, so a node that merely announces itself gets nothing. Brokers from
// before the quorum (legacy mode) have no member list: the gateway then learns brokers from
// the control topic only when its caller vouches for them (TrustLearned: cmd/gateway with
// -trusted-brokers, whose list already filtered the digests); otherwise it uses its seeds
// alone, and a fresh key that gossips to a broker gets no partition.

// TrustLearned declares that the brokers Learn is given were checked by the caller (a
// -trusted-brokers list): in legacy mode they become placement candidates.
func (c *Cluster) TrustLearned() {
	c.mu.Lock()
	c.trustLearned = true
	c.mu.Unlock()
}

// Believes reports whether a control-topic digest of id is believed: a seed, a registered
// broker of the quorum (quorum mode), or, before the mode is known and in legacy mode, any
// broker when TrustLearned was called.
func (c *Cluster) Believes(id key.PublicKey) bool {
	s := id.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.seeds[s]:
		return true
	case c.mode == modeQuorum:
		return c.members[s]
	}
	return c.trustLearned
}
