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
// duplicate, wrong-offset, not-drained), and never where the log holds a control record
// (control-value); every stored value was sent to that topic (phantom-read); each producer's
// records in a partition stored and acknowledged in send order (nonmonotonic-send); drained
// offsets strictly increasing (offset-order) and contiguous once control records are counted
// (offset-gap); consumers read what the log holds — a record read is never later absent or
// at another offset — and move through a partition without jumping over a record between
// seeks (inconsistent-read, poll-skip, nonmonotonic-poll; jumping over control records is
// fine); a group's committed offset never goes back below an acknowledged commit or an
// earlier answer, no acknowledged commit is below one acknowledged before it was sent, and an
// answer is always something committed (commit-backwards, phantom-commit); acknowledged topics
// exist with their partitions and configs (topic-missing, topic-config); no producer id handed
// out twice (producer-id-reused). A failed send is indeterminate: it may or may not be stored.
//
// Offsets and control records: transaction markers, and on a replicated partition the raft
// no-op each new leader term appends and membership changes, are control batches: one offset
// each, skipped by clients. A drain that keeps control records (kgo.KeepControlRecords) marks
// them Rec.Control and the offsets stay contiguous; Options.OffsetGaps is for drains that
// cannot see them: then offsets need only increase.
//
// Recorder.FirstWriteAfter and FirstSendOKAfter give the liveness figures the tests report (a
// kill → the first successful metadata write, or the first record acknowledged on a
// partition); no check depends on wall time.
package checker
