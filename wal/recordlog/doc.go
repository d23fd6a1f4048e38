// Package recordlog is a small fsynced log of whole records in one file, for state that is
// rewritten rather than retained: the transaction coordinator's log (broker/txn) and the
// share-group state log (broker/share/coord) are both a Log. It is not the partition log
// (package wal): there are no segments, offsets or reads, only Open (replay everything),
// Append and a compaction by rewrite.
//
// # File layout
//
// A sequence of frames, integers big-endian:
//
//	length u32 | CRC-32C (Castagnoli) of payload u32 | payload (length bytes, 1 .. MaxPayload)
//
// The payload is one record in the owner's encoding (Format.Encode and Format.Decode); a
// frame whose length, checksum or payload does not decode is bad.
//
// # Durability
//
// Append writes all its records with one write and one fsync; on a failure the file is cut
// back to its size before the call (if even that fails, the error says so and the owner
// stops). Open replays every frame. A bad frame at the end (a frame cut short or failing its
// checksum, from a crash during an append that was therefore never acknowledged) is a torn
// tail: Open cuts it, logs a warning and fsyncs the file. A bad frame followed by a good one
// anywhere after it is damage, not a torn tail: Open refuses the log (Format.Damaged) rather
// than drop acknowledged state. Open creates the directory and the file, and fsyncs the
// directory so that a new file's name is durable.
//
// MaybeCompact rewrites the file as the live state (one frame per record the owner returns)
// through wal.ReplaceFile (name.tmp, fsync, rename, fsync the directory) once the file is
// past Options.CompactBytes and holds at least twice as many records as the state. When a
// check finds the state is most of the file, the next check waits until the file has grown
// by another CompactBytes, so that a large live state is not rebuilt on every append.
//
// A Log is not safe for concurrent use: its owner serialises calls (both owners hold a
// mutex around it).
package recordlog
