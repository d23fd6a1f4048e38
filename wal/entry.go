package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Entry framing; the layout is drawn in doc.go.
const (
	headerSize    = 32
	entryVersion  = 1       // untagged entry (Append)
	maxEntryBytes = 1 << 30 // largest data accepted by Append (keeps positions within uint32)
	// entryVersionTagged: the entry's 8-byte tag follows the 32-byte header and counts in
	// length (AppendTagged). The fixed part is version 1's, so a reader that does not know
	// version 2 still checks its CRC and refuses it as a newer format rather than cutting it.
	entryVersionTagged = 2
	tagSize            = 8
	// entryVersionHole: a hole left by the cleaner (clean.go): count offsets whose entries
	// were removed, with no data (length 0) and no timestamp (maxTimestamp math.MinInt64).
	// Read never returns a hole; it keeps the offsets of a cleaned segment contiguous, so
	// every check that entry k+1 starts where entry k ends holds for cleaned segments too.
	// An older binary refuses it as a newer format (ErrUnsupportedVersion).
	entryVersionHole = 3

	offIndexEntrySize  = 8  // relOffset u32, position u32
	timeIndexEntrySize = 12 // maxTimestampBefore i64, relOffset u32
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors returned by the package.
var (
	ErrOffsetOutOfRange = errors.New("wal: offset out of range")
	ErrClosed           = errors.New("wal: log closed")
	ErrCorrupt          = errors.New("wal: corrupt log")
	ErrEntryTooLarge    = errors.New("wal: entry too large")
	ErrBadCount         = errors.New("wal: entry count must be positive")
	// ErrUnsupportedVersion: an intact entry (valid CRC) in a format this code does not know,
	// written by a newer version. Open fails with it rather than cutting the log there.
	ErrUnsupportedVersion = errors.New("wal: unsupported entry format version")
)

// IsCorruption reports whether err says stored data failed validation (as opposed to an I/O
// error or misuse).
func IsCorruption(err error) bool { return errors.Is(err, ErrCorrupt) }

// entryHeader is the decoded fixed part of an entry.
type entryHeader struct {
	crc          uint32
	length       uint32
	version      uint8
	flags        uint8
	count        int32
	baseOffset   int64
	maxTimestamp int64
}

func (h *entryHeader) size() int64 { return headerSize + int64(h.length) }

// dataStart is where the entry's data begins in its framed bytes (after the tag of a tagged
// entry).
func (h *entryHeader) dataStart() int {
	if h.version == entryVersionTagged {
		return headerSize + tagSize
	}
	return headerSize
}

// dataLen is the length of the entry's data (its length field less a tag).
func (h *entryHeader) dataLen() int { return int(h.length) - (h.dataStart() - headerSize) }

// entryTag returns the tag of the whole framed entry e (0 for an untagged entry).
func entryTag(h *entryHeader, e []byte) uint64 {
	if h.version == entryVersionTagged {
		return beUint64(e[headerSize : headerSize+tagSize])
	}
	return 0
}

// putHeader writes the header for data into b[:headerSize], computing the CRC over the rest of
// the header and data.
func putHeader(b []byte, data []byte, baseOffset int64, count int32, maxTimestamp int64) {
	putFields(b, len(data), entryVersion, baseOffset, count, maxTimestamp)
	c := crc32.Update(0, castagnoli, b[4:headerSize])
	c = crc32.Update(c, castagnoli, data)
	binary.BigEndian.PutUint32(b[0:4], c)
}

// putHeaderTagged writes the header and tag of a tagged entry into b[:headerSize+tagSize].
func putHeaderTagged(b []byte, data []byte, baseOffset int64, count int32, maxTimestamp int64, tag uint64) {
	_ = b[headerSize+tagSize-1]
	putFields(b, tagSize+len(data), entryVersionTagged, baseOffset, count, maxTimestamp)
	binary.BigEndian.PutUint64(b[32:40], tag)
	c := crc32.Update(0, castagnoli, b[4:headerSize+tagSize])
	c = crc32.Update(c, castagnoli, data)
	binary.BigEndian.PutUint32(b[0:4], c)
}

// putFields writes the header's fields after the CRC into b[4:headerSize]: the length (of
// tag and data), version, count, base offset and max timestamp.
func putFields(b []byte, length int, version byte, baseOffset int64, count int32, maxTimestamp int64) {
	_ = b[headerSize-1]
	binary.BigEndian.PutUint32(b[4:8], uint32(length))
	b[8] = version
	b[9] = 0
	b[10], b[11] = 0, 0
	binary.BigEndian.PutUint32(b[12:16], uint32(count))
	binary.BigEndian.PutUint64(b[16:24], uint64(baseOffset))
	binary.BigEndian.PutUint64(b[24:32], uint64(maxTimestamp))
}

// isHole reports whether h is a hole (entryVersionHole).
func (h *entryHeader) isHole() bool { return h.version == entryVersionHole }

// appendHole appends one framed hole of count offsets at baseOffset to dst.
func appendHole(dst []byte, baseOffset int64, count int32) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, headerSize)...)
	b := dst[n:]
	binary.BigEndian.PutUint32(b[4:8], 0)
	b[8] = entryVersionHole
	binary.BigEndian.PutUint32(b[12:16], uint32(count))
	binary.BigEndian.PutUint64(b[16:24], uint64(baseOffset))
	binary.BigEndian.PutUint64(b[24:32], 1<<63) // noTimestamp
	binary.BigEndian.PutUint32(b[0:4], crc32.Checksum(b[4:headerSize], castagnoli))
	return dst
}

// appendEntry appends one framed entry to dst.
func appendEntry(dst []byte, data []byte, baseOffset int64, count int32, maxTimestamp int64) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, headerSize)...)
	dst = append(dst, data...)
	putHeader(dst[n:n+headerSize], dst[n+headerSize:], baseOffset, count, maxTimestamp)
	return dst
}

// appendEntryTagged appends one framed tagged entry to dst.
func appendEntryTagged(dst []byte, data []byte, baseOffset int64, count int32, maxTimestamp int64, tag uint64) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, headerSize+tagSize)...)
	dst = append(dst, data...)
	putHeaderTagged(dst[n:n+headerSize+tagSize], dst[n+headerSize+tagSize:], baseOffset, count, maxTimestamp, tag)
	return dst
}

// parseHeader decodes b[:headerSize]. It checks only what the header alone can tell; the CRC
// is checked by verify once the data is at hand.
func parseHeader(b []byte) (entryHeader, error) {
	var h entryHeader
	if len(b) < headerSize {
		return h, fmt.Errorf("%w: short header", ErrCorrupt)
	}
	h.crc = binary.BigEndian.Uint32(b[0:4])
	h.length = binary.BigEndian.Uint32(b[4:8])
	h.version = b[8]
	h.flags = b[9]
	h.count = int32(binary.BigEndian.Uint32(b[12:16]))
	h.baseOffset = int64(binary.BigEndian.Uint64(b[16:24]))
	h.maxTimestamp = int64(binary.BigEndian.Uint64(b[24:32]))
	switch {
	case h.length > maxEntryBytes:
		return h, fmt.Errorf("%w: entry length %d", ErrCorrupt, h.length)
	case h.count <= 0:
		return h, fmt.Errorf("%w: entry count %d", ErrCorrupt, h.count)
	case h.baseOffset < 0:
		return h, fmt.Errorf("%w: negative base offset", ErrCorrupt)
	case h.version == entryVersionTagged && h.length < tagSize:
		return h, fmt.Errorf("%w: tagged entry length %d", ErrCorrupt, h.length)
	}
	return h, nil
}

// verify checks the CRC and version of a whole entry e (header + data).
func verify(h *entryHeader, e []byte) error {
	c := crc32.Checksum(e[4:], castagnoli)
	if c != h.crc {
		return fmt.Errorf("%w: crc mismatch at offset %d", ErrCorrupt, h.baseOffset)
	}
	if (h.version != entryVersion && h.version != entryVersionTagged && (h.version != entryVersionHole || h.length != 0)) ||
		h.flags != 0 || e[10] != 0 || e[11] != 0 {
		// A valid CRC over an unknown version is not a torn write: it is a newer format.
		return fmt.Errorf("%w %d (flags %d) at offset %d", ErrUnsupportedVersion, h.version, h.flags, h.baseOffset)
	}
	return nil
}

// decodeEntry decodes and verifies one complete entry at the start of b. It returns the header
// or an error if b does not start with a whole valid entry.
func decodeEntry(b []byte) (entryHeader, error) {
	h, err := parseHeader(b)
	if err != nil {
		return h, err
	}
	if int64(len(b)) < h.size() {
		return h, fmt.Errorf("%w: truncated entry", ErrCorrupt)
	}
	return h, verify(&h, b[:h.size()])
}

func putOffIndex(b []byte, relOffset, pos uint32) {
	binary.BigEndian.PutUint32(b[0:4], relOffset)
	binary.BigEndian.PutUint32(b[4:8], pos)
}

func putTimeIndex(b []byte, ts int64, relOffset uint32) {
	binary.BigEndian.PutUint64(b[0:8], uint64(ts))
	binary.BigEndian.PutUint32(b[8:12], relOffset)
}

func beUint32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
func beUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
