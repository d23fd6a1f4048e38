package txn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/meshkafka/meshkafka/wal"
)

// Store is the coordinator's durable log: Dir/txn.log, a sequence of frames
//
//	length u32 | CRC-32C of payload u32 | payload (one record, see AppendRecord)
//
// (big-endian). Append writes one frame per record and fsyncs before it returns. Open
// replays every frame; a torn tail (a frame cut short or failing its checksum at the end
// of the file, from a crash during an append that was therefore never acknowledged) is cut.
// A bad frame followed by good ones is damage, not a torn tail: Open refuses the log
// (ErrDamaged) rather than drop acknowledged state. When the file is larger than
// CompactBytes and twice the live state, Compact rewrites it as one record per
// transactional id (txn.log.tmp, fsync, rename, fsync Dir).
type Store struct {
	fs   wal.FS
	dir  string
	log  *slog.Logger
	f    wal.File
	size int64
	live int // records of the current state, for compaction
}

// ErrDamaged is returned by OpenStore for a log damaged before its tail.
var ErrDamaged = errors.New("txn: transaction log damaged")

const (
	logName      = "txn.log"
	frameHead    = 8
	CompactBytes = 4 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// OpenStore opens (creating) the log under dir and returns every record in order.
func OpenStore(fsys wal.FS, dir string, log *slog.Logger) (*Store, []*Txn, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	path := filepath.Join(dir, logName)
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, err
	}
	if err := fsys.SyncDir(dir); err != nil {
		f.Close()
		return nil, nil, err
	}
	buf, err := wal.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	size := int64(len(buf))
	recs, good, err := DecodeLog(buf)
	if err != nil {
		f.Close()
		log.Error("txn: transaction log damaged; refusing to start", "dir", dir, "err", err)
		return nil, nil, err
	}
	if good < size {
		log.Warn("txn: cutting torn tail of the transaction log", "at", good, "size", size)
		if err := f.Truncate(good); err != nil {
			f.Close()
			return nil, nil, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, nil, err
		}
	}
	return &Store{fs: fsys, dir: dir, log: log, f: f, size: good, live: len(recs)}, recs, nil
}

// DecodeLog parses a log's bytes: the records and the length of the good prefix. A bad
// frame with a good frame after it is ErrDamaged.
func DecodeLog(b []byte) ([]*Txn, int64, error) {
	var recs []*Txn
	off := 0
	for off < len(b) {
		t, n := decodeFrame(b[off:])
		if t == nil {
			if nextGoodFrame(b[off+1:]) {
				return nil, 0, fmt.Errorf("%w: bad frame at byte %d with good frames after it", ErrDamaged, off)
			}
			return recs, int64(off), nil
		}
		recs = append(recs, t)
		off += n
	}
	return recs, int64(off), nil
}

// decodeFrame decodes the frame at the start of b (nil if it is not a good frame).
func decodeFrame(b []byte) (*Txn, int) {
	if len(b) < frameHead {
		return nil, 0
	}
	n := binary.BigEndian.Uint32(b)
	if n == 0 || n > maxRecord || int64(n) > int64(len(b)-frameHead) {
		return nil, 0
	}
	payload := b[frameHead : frameHead+int(n)]
	if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(b[4:]) {
		return nil, 0
	}
	t, err := DecodeRecord(payload)
	if err != nil {
		return nil, 0
	}
	return t, frameHead + int(n)
}

// nextGoodFrame reports whether a good frame starts anywhere in b.
func nextGoodFrame(b []byte) bool {
	for i := range b {
		if t, _ := decodeFrame(b[i:]); t != nil {
			return true
		}
	}
	return false
}

func appendFrame(b []byte, t *Txn) []byte {
	at := len(b)
	b = append(b, make([]byte, frameHead)...)
	b = AppendRecord(b, t)
	payload := b[at+frameHead:]
	binary.BigEndian.PutUint32(b[at:], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[at+4:], crc32.Checksum(payload, castagnoli))
	return b
}

// Append makes records durable (one write, one fsync). On failure the file is cut back to
// its size before the call; if even that fails the store is unusable (the caller stops).
func (s *Store) Append(recs ...*Txn) error {
	var buf []byte
	for _, t := range recs {
		buf = appendFrame(buf, t)
	}
	if _, err := s.f.WriteAt(buf, s.size); err != nil {
		return s.undo(err)
	}
	if err := s.f.Sync(); err != nil {
		return s.undo(err)
	}
	s.size += int64(len(buf))
	s.live += len(recs)
	return nil
}

func (s *Store) undo(err error) error {
	if terr := s.f.Truncate(s.size); terr != nil {
		return fmt.Errorf("txn: append failed (%v) and the log could not be cut back: %w", err, terr)
	}
	return fmt.Errorf("txn: append: %w", err)
}

// MaybeCompact rewrites the log as state (one record per id) when it is large.
func (s *Store) MaybeCompact(state []*Txn) error {
	if s.size < CompactBytes || s.live < 2*len(state) {
		return nil
	}
	var buf []byte
	for _, t := range state {
		buf = appendFrame(buf, t)
	}
	f, err := wal.ReplaceFile(s.fs, s.dir, logName, buf)
	if err != nil {
		return err
	}
	s.f.Close()
	s.f, s.size, s.live = f, int64(len(buf)), len(state)
	return nil
}

// Close closes the file.
func (s *Store) Close() error { return s.f.Close() }
