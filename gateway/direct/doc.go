// Package direct is the backend of a broker's own Kafka listener: the direct data path of
// issue #16 (item 4). A broker started with a Kafka listener (cmd/broker -kafka-listen) runs
// a gateway.Server in its process whose Metadata lists every broker that advertises a
// listener at that listener (gateway.Config.DirectBrokers), so a Kafka client sends each
// replicated partition's Produce, Fetch and ListOffsets straight to the broker leading it,
// as with Kafka.
//
// Backend splits the work: a Produce, Fetch or ListOffsets whose partitions this broker all
// leads now (Leads, broker.Broker.Leads) is served by the broker in process, with no mesh hop
// and no encoding; anything else goes to Remote, the same cluster view a stand-alone gateway
// uses (package gateway/cluster), which carries it over the mesh to the leader (and to this
// broker itself through an in-memory brokermesh.Local). Every other op (metadata, admin,
// groups, producer ids, ACLs, SCRAM) goes to Remote too, so the embedded listener answers
// exactly as a gateway would.
//
// Decision (requests that reach a broker that does not lead the partition): they are routed
// over the mesh to the leader rather than answered NOT_LEADER_OR_FOLLOWER. A client only sends
// them there while its metadata is stale (a leader moved, or a partition's leader has no
// listener of its own and is listed at this one); routing answers it at the cost of one mesh
// hop, where NOT_LEADER_OR_FOLLOWER costs a metadata refresh and a retry backoff (kgo, the
// Java client and librdkafka all back off 100 ms or more), and cannot work at all for a leader
// without a listener. A broker that stops closes its listener, so clients of a dead leader
// refresh their metadata at once and find the new leader. The cluster view's own rule for a
// broker that answers NOT_LEADER_OR_FOLLOWER still applies: resend once to the leader a fresh
// placement names, then pass the error to the client.
//
// Stats counts the requests served in process and those routed, per kind, for tests and the
// benchmark to check that clients do talk to the leaders.
package direct
