package coord

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/meshkafka/meshkafka/broker/share"
	"github.com/meshkafka/meshkafka/wal"
)

// Store is the share-group state log: Dir/share.log, a sequence of frames
//
//	length u32 | CRC-32C of payload u32 | payload (one share.Record, share.AppendRecord)
//
// (big-endian), the same framing as the transaction log (broker/txn). Append writes all its
// records with one write and one fsync. Open replays every frame; a torn tail (a frame cut
// short or failing its checksum at the end, from a crash during an append that was never
// acknowledged) is cut; a bad frame followed by a good one is damage and Open refuses the
// log (ErrDamaged) rather than drop acknowledged state. When the file passes CompactBytes
// and holds more than twice the live records, it is rewritten from the Machine's State
// (share.log.tmp, fsync, rename, fsync Dir).
type Store struct {
	fs   wal.FS
	dir  string
	f    wal.File
	size int64
	recs int   // records in the file
	skip int64 // no compaction check below this size (a check found the log mostly live)
}

// ErrDamaged is returned by OpenStore for a log damaged before its tail.
var ErrDamaged = errors.New("share: state log damaged")

const (
	logName   = "share.log"
	frameHead = 8
	maxFrame  = 64 << 20
)

// CompactBytes is the size past which the log is rewritten from the live state.
var CompactBytes int64 = 4 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// OpenStore opens (creating) the log under dir and returns its records in order.
func OpenStore(fsys wal.FS, dir string, log *slog.Logger) (*Store, []*share.Record, error) {
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	f, err := fsys.OpenFile(filepath.Join(dir, logName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*Store, []*share.Record, error) {
		f.Close()
		return nil, nil, err
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fail(err)
	}
	buf, err := wal.ReadAll(f)
	if err != nil {
		return fail(err)
	}
	recs, good, err := DecodeLog(buf)
	if err != nil {
		log.Error("share: state log damaged; refusing to start", "dir", dir, "err", err)
		return fail(err)
	}
	if good < int64(len(buf)) {
		log.Warn("share: cutting torn tail of the state log", "at", good, "size", len(buf))
		if err := f.Truncate(good); err != nil {
			return fail(err)
		}
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	return &Store{fs: fsys, dir: dir, f: f, size: good, recs: len(recs)}, recs, nil
}

// DecodeLog parses a log: its records and the length of the good prefix. A bad frame with a
// good frame after it is ErrDamaged.
func DecodeLog(b []byte) ([]*share.Record, int64, error) {
	var recs []*share.Record
	off := 0
	for off < len(b) {
		r, n := decodeFrame(b[off:])
		if r == nil {
			for i := off + 1; i < len(b); i++ {
				if r, _ := decodeFrame(b[i:]); r != nil {
					return nil, 0, fmt.Errorf("%w: bad frame at byte %d with a good frame at %d", ErrDamaged, off, i)
				}
			}
			return recs, int64(off), nil
		}
		recs = append(recs, r)
		off += n
	}
	return recs, int64(off), nil
}

func decodeFrame(b []byte) (*share.Record, int) {
	if len(b) < frameHead {
		return nil, 0
	}
	n := binary.BigEndian.Uint32(b)
	if n == 0 || n > maxFrame || int64(n) > int64(len(b)-frameHead) {
		return nil, 0
	}
	payload := b[frameHead : frameHead+int(n)]
	if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(b[4:]) {
		return nil, 0
	}
	r, err := share.DecodeRecord(payload)
	if err != nil {
		return nil, 0
	}
	return r, frameHead + int(n)
}

func appendFrame(b []byte, r *share.Record) []byte {
	at := len(b)
	b = append(b, make([]byte, frameHead)...)
	b = share.AppendRecord(b, r)
	payload := b[at+frameHead:]
	binary.BigEndian.PutUint32(b[at:], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[at+4:], crc32.Checksum(payload, castagnoli))
	return b
}

// Append makes records durable (one write, one fsync). On failure the file is cut back to
// its size before the call.
func (s *Store) Append(recs []*share.Record) error {
	if len(recs) == 0 {
		return nil
	}
	var buf []byte
	for _, r := range recs {
		buf = appendFrame(buf, r)
	}
	if _, err := s.f.WriteAt(buf, s.size); err != nil {
		return s.undo(err)
	}
	if err := s.f.Sync(); err != nil {
		return s.undo(err)
	}
	s.size += int64(len(buf))
	s.recs += len(recs)
	return nil
}

func (s *Store) undo(err error) error {
	if terr := s.f.Truncate(s.size); terr != nil {
		return fmt.Errorf("share: append failed (%v) and the log could not be cut back: %w", err, terr)
	}
	return fmt.Errorf("share: append: %w", err)
}

// MaybeCompact rewrites the log as state when it is large and mostly superseded.
func (s *Store) MaybeCompact(state func() []*share.Record) error {
	if s.size < max(CompactBytes, s.skip) {
		return nil
	}
	live := state()
	if s.recs < 2*len(live) {
		s.skip = s.size + CompactBytes // the live state is most of the log: look again later
		return nil
	}
	var buf []byte
	for _, r := range live {
		buf = appendFrame(buf, r)
	}
	f, err := wal.ReplaceFile(s.fs, s.dir, logName, buf)
	if err != nil {
		return err
	}
	s.f.Close()
	s.f, s.size, s.recs, s.skip = f, int64(len(buf)), len(live), 0
	return nil
}

// Close closes the file.
func (s *Store) Close() error { return s.f.Close() }
