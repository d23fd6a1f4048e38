package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// Journal record framing; the layout is drawn in doc.go (Commit journal).
const (
	journalMagic      = 0x574a4e4c // "WJNL"
	journalHeaderSize = 48
	// journalVersion is what this binary writes. Version 2 has version 1's layout plus a
	// rule: a record's synced position is at or past the base of the segment it is written
	// into, so that a record left in a recycled segment file by its earlier use (synced below
	// the base) is told from a record of the segment (doc.go, Recycled segments). Both are read.
	journalVersion    = 2
	journalVersionV1  = 1
	journalKindEntry  = 1
	journalKindRemove = 2 // the log was removed (Log.Remove): replay skips its earlier records
	// Kinds 3-6 (see doc.go): a tagged entry (the tag precedes the data), a truncation
	// (Log.TruncateFrom: base is the first offset removed), a reset (Log.Reset: base is the
	// new start offset; replay drops the log's earlier records) and a state (Log.SetState:
	// data is the state).
	journalKindTagged   = 3
	journalKindTruncate = 4
	journalKindReset    = 5
	journalKindState    = 6
	journalSuffix       = ".journal"
	maxJournalName      = 4096
)

// journalRecord is one decoded journal record: one entry of one partition log, or the removal,
// truncation or reset of the log, or its state.
type journalRecord struct {
	kind    uint8
	version uint8 // 1 or 2 (journalVersion)
	lsn     int64 // journal position of the record
	synced  int64 // journal position known durable when it was written
	name    string
	base    int64 // entry: its base offset; truncate: the cut; reset: the new start
	count   int32
	maxTs   int64
	tag     uint64 // kind 3
	data    []byte // aliases the journal bytes read (entry data or state)
}

func (r *journalRecord) end() int64 { return r.base + int64(r.count) }

// isEntry reports whether r carries an entry (kind 1 or 3).
func (r *journalRecord) isEntry() bool {
	return r.kind == journalKindEntry || r.kind == journalKindTagged
}

// journalRecordSize is the framed size of a record for name and data.
func journalRecordSize(name string, data []byte) int {
	return journalHeaderSize + len(name) + len(data)
}

// appendJournalRecord appends one framed untagged entry record to dst.
func appendJournalRecord(dst []byte, synced int64, name string, data []byte, base int64, count int32, maxTs int64) []byte {
	return appendJournalRec(dst, journalKindEntry, synced, name, 0, data, base, count, maxTs)
}

// appendJournalRec appends one framed record of any kind to dst (tag is written, before the
// data, for kind 3 only).
// appendJournalTo writes one framed record into w, as appendJournalRec would append it, and
// returns its size. The header is built in hdr (journalHeaderSize + tagSize bytes of the
// caller's, so that nothing escapes to the heap) and the CRC is computed over the pieces.
func appendJournalTo(w *writeBuf, hdr []byte, kind uint8, synced int64, name string, tag uint64, data []byte, base int64, count int32, maxTs int64) int {
	size := journalRecordSize(name, data)
	b := hdr[:journalHeaderSize]
	var tb []byte
	if kind == journalKindTagged {
		size += tagSize
		tb = hdr[journalHeaderSize : journalHeaderSize+tagSize]
		binary.BigEndian.PutUint64(tb, tag)
	}
	putJournalHeader(b, size, kind, len(name), synced, base, count, maxTs)
	n := w.len()
	w.write(b)
	w.writeString(name)
	c := crc32.Update(0, castagnoli, b[4:])
	if len(name) > 0 {
		// The name's bytes as written into the buffer (no conversion of the string).
		c = w.crcOfLast(c, n+journalHeaderSize, len(name))
	}
	if tb != nil {
		w.write(tb)
		c = crc32.Update(c, castagnoli, tb)
	}
	w.write(data)
	c = crc32.Update(c, castagnoli, data)
	binary.BigEndian.PutUint32(b[0:4], c)
	w.overwrite(n, b[0:4])
	return size
}

// putJournalHeader fills a record header's fields after its CRC (b[4:journalHeaderSize]).
func putJournalHeader(b []byte, size int, kind uint8, nameLen int, synced, base int64, count int32, maxTs int64) {
	binary.BigEndian.PutUint32(b[4:8], journalMagic)
	binary.BigEndian.PutUint32(b[8:12], uint32(size))
	b[12] = journalVersion
	b[13] = kind
	binary.BigEndian.PutUint16(b[14:16], uint16(nameLen))
	binary.BigEndian.PutUint64(b[16:24], uint64(synced))
	binary.BigEndian.PutUint64(b[24:32], uint64(base))
	binary.BigEndian.PutUint32(b[32:36], uint32(count))
	binary.BigEndian.PutUint32(b[36:40], 0)
	binary.BigEndian.PutUint64(b[40:48], uint64(maxTs))
}

func appendJournalRec(dst []byte, kind uint8, synced int64, name string, tag uint64, data []byte, base int64, count int32, maxTs int64) []byte {
	n := len(dst)
	size := journalRecordSize(name, data)
	if kind == journalKindTagged {
		size += tagSize
	}
	dst = append(dst, make([]byte, journalHeaderSize)...)
	dst = append(dst, name...)
	if kind == journalKindTagged {
		dst = binary.BigEndian.AppendUint64(dst, tag)
	}
	dst = append(dst, data...)
	b := dst[n:]
	putJournalHeader(b, size, kind, len(name), synced, base, count, maxTs)
	binary.BigEndian.PutUint32(b[0:4], crc32.Checksum(b[4:size], castagnoli))
	return dst
}

// appendJournalRemove appends one framed remove record for name to dst.
func appendJournalRemove(dst []byte, synced int64, name string) []byte {
	return appendJournalRec(dst, journalKindRemove, synced, name, 0, nil, 0, 0, 0)
}

// encodeJournalRecord re-encodes a decoded record, in its version (tests, fuzzing).
func encodeJournalRecord(dst []byte, r *journalRecord) []byte {
	n := len(dst)
	dst = appendJournalRec(dst, r.kind, r.synced, r.name, r.tag, r.data, r.base, r.count, r.maxTs)
	if r.version != 0 && r.version != journalVersion {
		b := dst[n:]
		b[12] = r.version
		binary.BigEndian.PutUint32(b[0:4], crc32.Checksum(b[4:], castagnoli))
	}
	return dst
}

// decodeJournalRecord decodes the record at the start of b. It returns the record and its
// size, or an ErrCorrupt error if b does not start with a whole valid record (a partial one
// included), or ErrUnsupportedVersion for an intact record of an unknown version.
func decodeJournalRecord(b []byte) (journalRecord, int, error) {
	var r journalRecord
	if len(b) < journalHeaderSize {
		return r, 0, fmt.Errorf("%w: partial journal record header", ErrCorrupt)
	}
	if binary.BigEndian.Uint32(b[4:8]) != journalMagic {
		return r, 0, fmt.Errorf("%w: bad journal record magic", ErrCorrupt)
	}
	size := int(binary.BigEndian.Uint32(b[8:12]))
	nameLen := int(binary.BigEndian.Uint16(b[14:16]))
	if size < journalHeaderSize+nameLen || size > journalHeaderSize+maxJournalName+maxEntryBytes {
		return r, 0, fmt.Errorf("%w: journal record size %d", ErrCorrupt, size)
	}
	if len(b) < size {
		return r, 0, fmt.Errorf("%w: partial journal record", ErrCorrupt)
	}
	if crc32.Checksum(b[4:size], castagnoli) != binary.BigEndian.Uint32(b[0:4]) {
		return r, 0, fmt.Errorf("%w: journal record crc mismatch", ErrCorrupt)
	}
	r.kind = b[13]
	r.version = b[12]
	if (r.version != journalVersion && r.version != journalVersionV1) || r.kind < journalKindEntry || r.kind > journalKindState || binary.BigEndian.Uint32(b[36:40]) != 0 {
		return r, 0, fmt.Errorf("%w %d (kind %d) in the journal", ErrUnsupportedVersion, b[12], b[13])
	}
	r.synced = int64(binary.BigEndian.Uint64(b[16:24]))
	r.base = int64(binary.BigEndian.Uint64(b[24:32]))
	r.count = int32(binary.BigEndian.Uint32(b[32:36]))
	r.maxTs = int64(binary.BigEndian.Uint64(b[40:48]))
	if nameLen == 0 {
		return r, 0, fmt.Errorf("%w: journal record without a log name", ErrCorrupt)
	}
	r.name = string(b[journalHeaderSize : journalHeaderSize+nameLen])
	rest := b[journalHeaderSize+nameLen : size : size]
	switch r.kind {
	case journalKindEntry, journalKindTagged:
		if r.count <= 0 || r.base < 0 {
			return r, 0, fmt.Errorf("%w: journal record count %d base %d", ErrCorrupt, r.count, r.base)
		}
		if r.kind == journalKindTagged {
			if len(rest) < tagSize {
				return r, 0, fmt.Errorf("%w: tagged journal record without its tag", ErrCorrupt)
			}
			r.tag = binary.BigEndian.Uint64(rest)
			rest = rest[tagSize:]
		}
		r.data = rest
	case journalKindRemove, journalKindTruncate, journalKindReset:
		if r.count != 0 || r.maxTs != 0 || len(rest) != 0 || r.base < 0 || (r.kind == journalKindRemove && r.base != 0) {
			return r, 0, fmt.Errorf("%w: journal record of kind %d with an entry", ErrCorrupt, r.kind)
		}
	case journalKindState:
		if r.count != 0 || r.maxTs != 0 || r.base != 0 || len(rest) > MaxStateBytes {
			return r, 0, fmt.Errorf("%w: journal state record with an entry or %d bytes", ErrCorrupt, len(rest))
		}
		r.data = rest
	}
	return r, size, nil
}

// readJournal decodes the records of one journal segment whose bytes are b and whose first
// byte has journal position base, starting at byte from. It returns the records and the end of
// the valid ones. A damaged or partial record ends the valid records: it is a torn tail if
// nothing after it shows that it had been made durable, and corruption (an ErrCorrupt error)
// if an intact record after it was written once the journal was durable past it (each record
// carries the durable position at its writing, as etcd's WAL carries its CRC chain).
//
// A segment file may be longer than its records: a recycled file (doc.go, Recycled segments)
// still holds records of its earlier use after them, and a preallocated one zeros. A version-2
// record whose synced position lies below base is such a leftover (every version-2 record
// written into a segment carries a synced position at or past the segment's base, where the
// journal was durable when the segment began), and is treated as a damaged one: the end of
// the valid records, unless a record after it shows otherwise. Only files written by a binary
// that writes version 2 are ever recycled, so no version-1 leftover can follow the records.
func readJournal(b []byte, base, from int64) (recs []journalRecord, end int64, err error) {
	pos := from
	for pos < int64(len(b)) {
		r, n, derr := decodeJournalRecord(b[pos:])
		if derr == nil && r.version >= 2 && r.synced < base {
			derr = fmt.Errorf("%w: journal record of an earlier use of the segment file (synced %d, segment base %d)", ErrCorrupt, r.synced, base)
		}
		if derr != nil {
			if IsCorruption(derr) {
				if later, ok := durableAfter(b, base, pos); ok {
					return recs, pos, fmt.Errorf("%w: journal damaged at position %d, below its durable point %d (%v)",
						ErrCorrupt, base+pos, later, derr)
				}
			}
			if !IsCorruption(derr) {
				return recs, pos, fmt.Errorf("journal position %d: %w", base+pos, derr)
			}
			return recs, pos, nil
		}
		r.lsn = base + pos
		recs = append(recs, r)
		pos += int64(n)
	}
	return recs, pos, nil
}

// durableAfter looks for an intact record after the damaged one at pos that was written when
// the journal was already durable beyond pos; it returns that durable position.
func durableAfter(b []byte, base, pos int64) (int64, bool) {
	var magic [4]byte
	binary.BigEndian.PutUint32(magic[:], journalMagic)
	for i := pos + 1; i+journalHeaderSize <= int64(len(b)); {
		j := bytes.Index(b[i+4:], magic[:])
		if j < 0 {
			return 0, false
		}
		start := i + int64(j)
		r, _, err := decodeJournalRecord(b[start:])
		if err == nil && r.synced > base+pos {
			return r.synced, true
		}
		i = start + 1
	}
	return 0, false
}

// journalName is a journal segment's file name: its first byte's journal position.
func journalName(base int64) string { return segmentName(base) + journalSuffix }

func parseJournalName(name string) (int64, bool) { return parseNumberedName(name, journalSuffix) }

// parseNumberedName parses a name of baseDigits digits and suffix (a journal segment's, a
// spare's) into its number.
func parseNumberedName(name, suffix string) (int64, bool) {
	stem, ok := strings.CutSuffix(name, suffix)
	if !ok || len(stem) != baseDigits {
		return 0, false
	}
	v, err := strconv.ParseInt(stem, 10, 64)
	return v, err == nil && v >= 0
}
