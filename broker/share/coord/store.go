package coord

import (
	"errors"
	"log/slog"

	"github.com/meshkafka/meshkafka/broker/share"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/recordlog"
)

// Store is the share-group state log: Dir/share.log, a wal/recordlog log of frames
//
//	length u32 | CRC-32C of payload u32 | payload (one share.Record, share.AppendRecord)
//
// (big-endian), the same framing as the transaction log (broker/txn). Append writes all its
// records with one write and one fsync. Open replays every frame; a torn tail (a frame cut
// short or failing its checksum at the end, from a crash during an append that was never
// acknowledged) is cut; a bad frame followed by a good one is damage and Open refuses the
// log (ErrDamaged) rather than drop acknowledged state. When the file passes CompactBytes
// and holds more than twice the live records, MaybeCompact rewrites it from the Machine's
// State (share.log.tmp, fsync, rename, fsync Dir).
type Store = recordlog.Log[*share.Record]

// ErrDamaged is returned by OpenStore for a log damaged before its tail.
var ErrDamaged = errors.New("share: state log damaged")

const logName = "share.log"

// CompactBytes is the size past which the log is rewritten from the live state (read when
// the log is opened).
var CompactBytes int64 = 4 << 20

var format = recordlog.Format[*share.Record]{Encode: share.AppendRecord, Decode: share.DecodeRecord, Damaged: ErrDamaged}

// OpenStore opens (creating) the log under dir and returns its records in order.
func OpenStore(fsys wal.FS, dir string, log *slog.Logger) (*Store, []*share.Record, error) {
	return recordlog.Open(&format, recordlog.Options{FS: fsys, Dir: dir, Name: logName,
		What: "share: state log", Logger: log, CompactBytes: CompactBytes})
}

// DecodeLog parses a log: its records and the length of the good prefix. A bad frame with a
// good frame after it is ErrDamaged.
func DecodeLog(b []byte) ([]*share.Record, int64, error) { return format.DecodeLog(b) }
