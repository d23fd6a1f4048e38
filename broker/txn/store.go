package txn

import (
	"errors"
	"log/slog"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/recordlog"
)

// Store is a coordinator log of its own (Open): Dir/txn.log, a wal/recordlog log of frames.
// The broker kept its coordinator's records in one before they moved into its commit journal
// (WALJournal, which reads such a file once to move it in); Open still serves a coordinator
// without a broker. A wal/recordlog log of frames
//
//	length u32 | CRC-32C of payload u32 | payload (one record, see AppendRecord)
//
// (big-endian). Append writes its records with one write and fsyncs before it returns. Open
// replays every frame; a torn tail (a frame cut short or failing its checksum at the end
// of the file, from a crash during an append that was therefore never acknowledged) is cut.
// A bad frame followed by good ones is damage, not a torn tail: Open refuses the log
// (ErrDamaged) rather than drop acknowledged state. When the file is larger than
// CompactBytes and twice the live state, MaybeCompact rewrites it as one record per
// transactional id (txn.log.tmp, fsync, rename, fsync Dir).
type Store struct {
	*recordlog.Log[*Txn]
}

// ErrDamaged is returned by OpenStore for a log damaged before its tail.
var ErrDamaged = errors.New("txn: transaction log damaged")

const (
	logName      = "txn.log"
	CompactBytes = 4 << 20
)

var format = recordlog.Format[*Txn]{Encode: AppendRecord, Decode: DecodeRecord, MaxPayload: maxRecord, Damaged: ErrDamaged}

// OpenStore opens (creating) the log under dir and returns every record in order.
func OpenStore(fsys wal.FS, dir string, log *slog.Logger) (*Store, []*Txn, error) {
	l, recs, err := recordlog.Open(&format, recordlog.Options{FS: fsys, Dir: dir, Name: logName,
		What: "txn: transaction log", Logger: log, CompactBytes: CompactBytes})
	if err != nil {
		return nil, nil, err
	}
	return &Store{l}, recs, nil
}

// DecodeLog parses a log's bytes: the records and the length of the good prefix. A bad
// frame with a good frame after it is ErrDamaged.
func DecodeLog(b []byte) ([]*Txn, int64, error) { return format.DecodeLog(b) }

// MaybeCompact rewrites the log as state (one record per id) when it is large and mostly
// superseded.
func (s *Store) MaybeCompact(state []*Txn) error {
	return s.Log.MaybeCompact(func() []*Txn { return state })
}
