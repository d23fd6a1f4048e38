package kafkawire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/compress/zstd"
)

// DownConvert turns stored RecordBatch v2 bytes (one or more batches back to back, as the
// broker answers a fetch) into a legacy message set of the given magic (0 or 1), the format
// Fetch v0–v3 answer with: Fetch v0/v1 carry magic 0, v2/v3 magic 1. Every record becomes
// one uncompressed message at its absolute offset (batches are decompressed: gzip, snappy,
// lz4, zstd); control batches (transaction markers) are dropped, as Kafka's down-conversion
// drops them; record headers are dropped (legacy messages have none). Records below
// minOffset are skipped (a fetch answers the whole batch holding the fetch offset). A
// partial batch at the end (a fetch cut at max bytes) is ignored, as a client ignores it. An
// unknown magic or codec or a malformed batch is ErrCorruptMessageSet; whatever was converted
// before it is returned with the error.
func DownConvert(dst, batches []byte, magic int8, minOffset int64) ([]byte, error) {
	if magic != 0 && magic != 1 {
		return dst, fmt.Errorf("%w: down-convert to magic %d", ErrCorruptMessageSet, magic)
	}
	for len(batches) >= 17 {
		length := int64(int32(binary.BigEndian.Uint32(batches[8:])))
		if length < 49 {
			return dst, fmt.Errorf("%w: batch length %d", ErrCorruptMessageSet, length)
		}
		if 12+length > int64(len(batches)) {
			return dst, nil // partial trailing batch
		}
		b := batches[:12+length]
		batches = batches[12+length:]
		if b[16] != 2 {
			return dst, fmt.Errorf("%w: batch magic %d", ErrCorruptMessageSet, b[16])
		}
		if len(b) < 61 {
			return dst, fmt.Errorf("%w: short batch", ErrCorruptMessageSet)
		}
		if crc32.Checksum(b[21:], castagnoli) != binary.BigEndian.Uint32(b[17:]) {
			return dst, fmt.Errorf("%w: batch crc mismatch", ErrCorruptMessageSet)
		}
		base := int64(binary.BigEndian.Uint64(b))
		attrs := binary.BigEndian.Uint16(b[21:])
		if attrs&0x20 != 0 {
			continue // control batch
		}
		logAppend := attrs&0x08 != 0
		baseTS := int64(binary.BigEndian.Uint64(b[27:]))
		maxTS := int64(binary.BigEndian.Uint64(b[35:]))
		count := int(int32(binary.BigEndian.Uint32(b[57:])))
		recs := b[61:]
		if codec := attrs & 0x07; codec != 0 {
			raw, err := inflateBatch(codec, recs)
			if err != nil {
				return dst, fmt.Errorf("%w: %v", ErrCorruptMessageSet, err)
			}
			recs = raw
		}
		if count < 0 || count > len(recs) {
			return dst, fmt.Errorf("%w: record count %d", ErrCorruptMessageSet, count)
		}
		for range count {
			r, err := readRecord(&recs)
			if err != nil {
				return dst, err
			}
			off := base + r.offsetDelta
			if off < minOffset {
				continue
			}
			ts := baseTS + r.tsDelta
			if logAppend {
				ts = maxTS
			}
			dst = appendLegacyMessage(dst, off, magic, ts, logAppend, r.key, r.value)
		}
	}
	return dst, nil
}

type v2Record struct {
	tsDelta, offsetDelta int64
	key, value           []byte
}

var errRecord = fmt.Errorf("%w: malformed record", ErrCorruptMessageSet)

func readRecord(b *[]byte) (v2Record, error) {
	var r v2Record
	n, k := binary.Varint(*b)
	if k <= 0 || n < 0 || n > int64(len(*b)-k) {
		return r, errRecord
	}
	rec := (*b)[k : k+int(n)]
	*b = (*b)[k+int(n):]
	if len(rec) < 1 {
		return r, errRecord
	}
	rec = rec[1:] // attributes
	var ok bool
	if r.tsDelta, rec, ok = readVarint(rec); !ok {
		return r, errRecord
	}
	if r.offsetDelta, rec, ok = readVarint(rec); !ok {
		return r, errRecord
	}
	if r.key, rec, ok = readVarBytes(rec); !ok {
		return r, errRecord
	}
	if r.value, _, ok = readVarBytes(rec); !ok {
		return r, errRecord
	}
	return r, nil
}

func readVarint(b []byte) (int64, []byte, bool) {
	v, k := binary.Varint(b)
	if k <= 0 {
		return 0, nil, false
	}
	return v, b[k:], true
}

func readVarBytes(b []byte) ([]byte, []byte, bool) {
	n, b, ok := readVarint(b)
	if !ok || n < -1 || n > int64(len(b)) {
		return nil, nil, false
	}
	if n == -1 {
		return nil, b, true
	}
	return b[:n], b[n:], true
}

// appendLegacyMessage appends offset, size and one uncompressed message of the given magic.
func appendLegacyMessage(dst []byte, offset int64, magic int8, ts int64, logAppend bool, key, value []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(offset))
	sizeAt := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, 0) // size, below
	crcAt := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, 0) // crc, below
	dst = append(dst, byte(magic))
	var attrs byte
	if magic == 1 && logAppend {
		attrs = 0x08
	}
	dst = append(dst, attrs)
	if magic == 1 {
		dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	}
	dst = appendLegacyBytes(dst, key)
	dst = appendLegacyBytes(dst, value)
	binary.BigEndian.PutUint32(dst[sizeAt:], uint32(len(dst)-crcAt))
	binary.BigEndian.PutUint32(dst[crcAt:], crc32.ChecksumIEEE(dst[crcAt+4:]))
	return dst
}

func appendLegacyBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.BigEndian.AppendUint32(dst, 0xffffffff)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

// inflateBatch decompresses a v2 batch's records: codecs 1–3 as in message sets (a v2
// batch's snappy is xerial-framed or raw, lz4 a standard frame), 4 zstd.
func inflateBatch(codec uint16, in []byte) ([]byte, error) {
	if codec != 4 {
		return inflate(byte(codec), in)
	}
	zr, err := zstd.NewReader(bytes.NewReader(in), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(maxInflated)))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return readCapped(zr)
}
