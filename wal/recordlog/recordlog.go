package recordlog

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

// ErrDamaged is what a Format with no Damaged error of its own wraps in the error for a log
// damaged before its tail.
var ErrDamaged = errors.New("recordlog: log damaged before its tail")

// frameHead is the bytes of a frame before its payload: length and checksum.
const frameHead = 8

// DefaultMaxPayload is the largest payload of a Format with no MaxPayload.
const DefaultMaxPayload = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Format is how records of type R are framed. Encode and Decode are required.
type Format[R any] struct {
	// Encode appends r's encoding to b (the payload of its frame).
	Encode func(b []byte, r R) []byte
	// Decode decodes one payload; an error makes the frame bad.
	Decode func(payload []byte) (R, error)
	// MaxPayload bounds a frame's payload (0: DefaultMaxPayload): a longer length is bad.
	MaxPayload uint32
	// Damaged is wrapped by the error for a log damaged before its tail (nil: ErrDamaged).
	Damaged error
}

// AppendFrame appends r's frame to b.
func (f *Format[R]) AppendFrame(b []byte, r R) []byte {
	at := len(b)
	b = append(b, make([]byte, frameHead)...)
	b = f.Encode(b, r)
	payload := b[at+frameHead:]
	binary.BigEndian.PutUint32(b[at:], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[at+4:], crc32.Checksum(payload, castagnoli))
	return b
}

// DecodeLog parses a whole log: its records in order and the length of the good prefix
// (shorter than b where a torn tail follows). A bad frame with a good frame anywhere after
// it is an error wrapping Damaged.
func (f *Format[R]) DecodeLog(b []byte) ([]R, int64, error) {
	var recs []R
	off := 0
	for off < len(b) {
		r, n, ok := f.decodeFrame(b[off:])
		if !ok {
			for i := off + 1; i < len(b); i++ {
				if _, _, ok := f.decodeFrame(b[i:]); ok {
					return nil, 0, fmt.Errorf("%w: bad frame at byte %d with a good frame at %d", f.damaged(), off, i)
				}
			}
			return recs, int64(off), nil
		}
		recs = append(recs, r)
		off += n
	}
	return recs, int64(off), nil
}

// decodeFrame decodes the frame at the start of b: its record and length, ok false if it
// is not a good frame.
func (f *Format[R]) decodeFrame(b []byte) (r R, size int, ok bool) {
	if len(b) < frameHead {
		return r, 0, false
	}
	n := binary.BigEndian.Uint32(b)
	limit := f.MaxPayload
	if limit == 0 {
		limit = DefaultMaxPayload
	}
	if n == 0 || n > limit || int64(n) > int64(len(b)-frameHead) {
		return r, 0, false
	}
	payload := b[frameHead : frameHead+int(n)]
	if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(b[4:]) {
		return r, 0, false
	}
	r, err := f.Decode(payload)
	if err != nil {
		return r, 0, false
	}
	return r, frameHead + int(n), true
}

func (f *Format[R]) damaged() error {
	if f.Damaged != nil {
		return f.Damaged
	}
	return ErrDamaged
}

// Options say where a Log lives and how it speaks of itself.
type Options struct {
	FS   wal.FS // required
	Dir  string // created if missing
	Name string // the file's name in Dir
	// What names the log in errors and log lines, e.g. "txn: transaction log".
	What string
	// Logger gets the torn-tail warning and the damage error (nil: discarded).
	Logger *slog.Logger
	// CompactBytes is the size from which MaybeCompact considers a rewrite (0: never).
	CompactBytes int64
}

// Log is one open record log; see the package doc.
type Log[R any] struct {
	format *Format[R]
	opts   Options
	f      wal.File
	size   int64 // bytes of good frames in the file
	recs   int   // records in the file
	skip   int64 // no compaction check below this size (a check found the log mostly live)
}

// Open opens (creating) the log and returns it with its records in order. A torn tail is
// cut; a damaged log is refused with an error wrapping format.Damaged.
func Open[R any](format *Format[R], opts Options) (*Log[R], []R, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := opts.FS.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, nil, err
	}
	f, err := opts.FS.OpenFile(filepath.Join(opts.Dir, opts.Name), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*Log[R], []R, error) {
		f.Close()
		return nil, nil, err
	}
	if err := opts.FS.SyncDir(opts.Dir); err != nil {
		return fail(err)
	}
	buf, err := wal.ReadAll(f)
	if err != nil {
		return fail(err)
	}
	recs, good, err := format.DecodeLog(buf)
	if err != nil {
		log.Error(opts.What+" damaged; refusing to start", "dir", opts.Dir, "err", err)
		return fail(err)
	}
	if good < int64(len(buf)) {
		log.Warn(opts.What+": cutting torn tail", "dir", opts.Dir, "at", good, "size", len(buf))
		if err := f.Truncate(good); err != nil {
			return fail(err)
		}
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	return &Log[R]{format: format, opts: opts, f: f, size: good, recs: len(recs)}, recs, nil
}

// Append makes recs durable (one write, one fsync). On failure the file is cut back to its
// size before the call; if even that fails, the error says so and the log is unusable.
func (l *Log[R]) Append(recs ...R) error {
	if len(recs) == 0 {
		return nil
	}
	var buf []byte
	for _, r := range recs {
		buf = l.format.AppendFrame(buf, r)
	}
	if _, err := l.f.WriteAt(buf, l.size); err != nil {
		return l.undo(err)
	}
	if err := l.f.Sync(); err != nil {
		return l.undo(err)
	}
	l.size += int64(len(buf))
	l.recs += len(recs)
	return nil
}

func (l *Log[R]) undo(err error) error {
	if terr := l.f.Truncate(l.size); terr != nil {
		return fmt.Errorf("%s: append failed (%v) and the log could not be cut back: %w", l.opts.What, err, terr)
	}
	return fmt.Errorf("%s: append: %w", l.opts.What, err)
}

// MaybeCompact rewrites the log as state() when it is past CompactBytes and mostly
// superseded (see the package doc). state is called only when a rewrite is considered.
func (l *Log[R]) MaybeCompact(state func() []R) error {
	if l.opts.CompactBytes <= 0 || l.size < max(l.opts.CompactBytes, l.skip) {
		return nil
	}
	live := state()
	if l.recs < 2*len(live) {
		l.skip = l.size + l.opts.CompactBytes // the live state is most of the log: look again later
		return nil
	}
	var buf []byte
	for _, r := range live {
		buf = l.format.AppendFrame(buf, r)
	}
	f, err := wal.ReplaceFile(l.opts.FS, l.opts.Dir, l.opts.Name, buf)
	if err != nil {
		return err
	}
	l.f.Close()
	l.f, l.size, l.recs, l.skip = f, int64(len(buf)), len(live), 0
	return nil
}

// Size is the log's length in bytes (its good frames).
func (l *Log[R]) Size() int64 { return l.size }

// Records is the number of records in the file.
func (l *Log[R]) Records() int { return l.recs }

// Close closes the file.
func (l *Log[R]) Close() error { return l.f.Close() }
