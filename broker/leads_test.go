package broker

import "testing"

// Leads is true on the replica that leads a replicated partition and serves it, false on its
// followers, on unknown partitions and on single-owner partitions; it follows a leader change.
func TestLeads(t *testing.T) {
	c := newFakeCluster(t, 3, nil)
	leads := func() []bool {
		return []bool{c.envs[1].b.Leads("r", 0), c.envs[2].b.Leads("r", 0), c.envs[3].b.Leads("r", 0)}
	}
	if got := leads(); !got[0] || got[1] || got[2] {
		t.Fatalf("leads %v, want only replica 1", got)
	}
	c.net.elect(t, c.gid, 2)
	if got := leads(); got[0] || !got[1] || got[2] {
		t.Fatalf("after electing 2: leads %v, want only replica 2", got)
	}
	b := c.envs[2].b
	if b.Leads("r", 1) || b.Leads("r", -1) || b.Leads("nope", 0) {
		t.Fatal("Leads of an unknown partition")
	}
	if err := b.SyncTopics([]TopicRecord{c.rec, {Name: "single", ID: TopicID{7}, Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	if b.Leads("single", 0) {
		t.Fatal("Leads of a single-owner partition")
	}
}
