// Package checker records what clients of a Kafka-compatible cluster did and saw during a
// fault test, and checks the history afterwards, in the way Jepsen checks Kafka and Redpanda
// (see the project's fault-testing notes). It is I/O-free: tests record through a Recorder
// (safe for concurrent clients; one logical clock orders every operation's invocation and
// completion), then call Check on the History.
//
// Recorded: every produce attempt (producer, per-producer sequence, unique value, and where the
// acknowledgement said it is stored), every record consumers read and their seeks, a final
// drain of every partition from log start to high watermark, group offset commits and
// OffsetFetch answers, topic creations and the topics listed at the end, and producer ids
// handed out by InitProducerID.
//
// Checked (each a Kind; zero anomalies of every kind is the only pass): every acknowledged
// record in the final log exactly once, at the offset it was acknowledged with (lost-write,
// duplicate, wrong-offset, not-drained); every stored value was sent to that topic
// (phantom-read); each producer's records in a partition stored and acknowledged in send order
// (nonmonotonic-send); drained offsets contiguous (offset-gap); consumers read what the log
// holds and move one offset at a time between seeks (inconsistent-read, poll-skip,
// nonmonotonic-poll); a group's committed offset never goes back below an acknowledged commit
// or an earlier answer, and is always something committed (commit-backwards, phantom-commit);
// acknowledged topics exist with their partitions and configs (topic-missing, topic-config);
// no producer id handed out twice (producer-id-reused). A failed send is indeterminate: it may
// or may not be stored.
//
// Recorder.FirstWriteAfter gives the liveness figure the tests report (a kill → the first
// successful metadata write); no check depends on wall time.
package checker
