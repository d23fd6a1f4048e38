// Package cluster is the gateway's view of the brokers: Cluster implements brokerop.Service
// (the gateway's Backend) over the mesh by carrying every op to the broker that owns it.
//
// Brokers run the metadata quorum (package broker/controller): the cluster then works in
// quorum mode (quorum.go). Controller ops (metadata, admin, groups, producer ids) go to any
// known broker, rotating on errors (brokers that failed last are asked last), and the broker
// forwards them to the quorum leader; the broker list comes from ClusterBrokers and the owners
// of partitions from Placement (decided by the leader at creation; owners learn their topics
// by applying them). Produce, Fetch and ListOffsets go to each partition's leader as
// Placement names it (a replicated partition's raft leader as last reported to the quorum,
// before any report its preferred leader; a single-owner partition's owner). A partition
// answered NOT_LEADER_OR_FOLLOWER is sent once more, to the leader a fresh Placement names or,
// while that still names the broker that refused, to the leader the brokers themselves name
// (leader.go: a ListOffsets to every member, which only the serving leader answers; the
// answer is a hint that routes the partition, and shows in Metadata, until the quorum records
// an epoch as high); with no leader yet the request is held up to 5 s (a Fetch: its
// MaxWaitMs) and then answered NOT_LEADER_OR_FOLLOWER, and the client retries. Pipelined
// produces (ProduceStaged) are not resent, so that a resend never overtakes a produce
// behind it. Only the quorum's members and the seeds are asked.
//
// Every call to a broker is watched (liveness.go): a call unanswered for 300 ms has its
// broker probed (ClusterBrokers{Local}, answered by the broker itself), and a broker that
// does not answer a probe within 1 s is marked down: the calls waiting on it fail at once
// (brokermesh.ErrUnavailable; reads are sent again to the partition's new leader within the
// same request), its connection is closed (a restarted broker is reached on a new one), and
// its partitions' data ops go to the leaders the other brokers name. Without this a call to a
// SIGKILLed broker waited for the mesh's 5 s idle timeout. A controller op abandoned so may
// still take effect later (the broker held it, e.g. forwarding it to the quorum leader while
// cut off): offset commits are therefore stamped (Cluster.OffsetCommit: this gateway's random
// writer id and a sequence number, the same on a resend), and the coordinator never applies a
// late copy over a newer commit of the same writer. A broker is up again as soon as it
// answers anything. With brokers from before the quorum (they answer its ops "unknown op")
// the legacy mode below applies:
//
//   - The controller (the smallest NodeId among the seeds) holds the topic registry, the
//     consumer groups and the placement log (PlacementTopic, placement.go); metadata, admin,
//     group and producer-id ops go to it.
//   - Each partition lives on one broker, chosen on first use and recorded in the placement
//     log, which a gateway reads only up to the point it knows to be durable (the end of its
//     own acks=all append; see placement.go): the broker serves records before they are
//     fsynced, and a controller crash can drop those. Produce, Fetch and ListOffsets are split by owner, sent concurrently and merged back
//     in request order (one split-call-merge helper, splitCall), creating a topic on an owner
//     that has not learned it yet.
//   - Broker is one broker as the gateway sees it: the carrier's brokermesh.Caller plus
//     read-ahead for sequential consumers (readahead.go): when a Fetch answer shows a backlog,
//     the next Fetch of the chain is sent at once, so the broker's read and the mesh transfer
//     overlap with the client decoding.
//
// The carrier itself (streams, frames, trust, the broker-side server) is package
// broker/brokermesh; this package is the gateway side and imports it, never the reverse.
package cluster
