package broker

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Decompression is used only to answer ListOffsets by timestamp exactly (the record whose
// timestamp reaches the target may sit inside a compressed batch). Stored data and fetches
// never go through it.

// maxDecompressed bounds a decompressed batch; beyond it a lookup falls back to the batch
// (a decompression bomb costs nothing more than that).
var maxDecompressed = 64 << 20 // a variable for tests

var errTooLarge = errors.New("broker: decompressed batch too large")

// xerialMagic starts snappy data framed the way the Java client writes it.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// decompressRecords undoes a RecordBatch's compression (attributes bits 0-2).
func decompressRecords(codec uint16, b []byte) ([]byte, error) {
	switch codec {
	case 0:
		return b, nil
	case 1:
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return readLimited(zr)
	case 2:
		return unsnappy(b)
	case 3:
		return readLimited(lz4.NewReader(bytes.NewReader(b)))
	case 4:
		zr, err := zstd.NewReader(bytes.NewReader(b), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(maxDecompressed)))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		return readLimited(zr)
	}
	return nil, fmt.Errorf("broker: unknown compression codec %d", codec)
}

func readLimited(r io.Reader) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, int64(maxDecompressed)+1))
	if err != nil {
		return nil, err
	}
	if len(out) > maxDecompressed {
		return nil, errTooLarge
	}
	return out, nil
}

// unsnappy decodes a raw snappy block or xerial framing (magic, two version words, then
// chunks of a big-endian length and a raw snappy block).
func unsnappy(b []byte) ([]byte, error) {
	if !bytes.HasPrefix(b, xerialMagic) {
		return snappyBlock(nil, b)
	}
	if len(b) < 16 {
		return nil, errors.New("broker: short xerial snappy header")
	}
	b = b[16:]
	var out []byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, errors.New("broker: truncated xerial snappy chunk")
		}
		n := binary.BigEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return nil, errors.New("broker: truncated xerial snappy chunk")
		}
		var err error
		if out, err = snappyBlock(out, b[4:4+n]); err != nil {
			return nil, err
		}
		b = b[4+n:]
	}
	return out, nil
}

func snappyBlock(dst, blk []byte) ([]byte, error) {
	n, err := s2.DecodedLen(blk)
	if err != nil {
		return nil, err
	}
	if n > maxDecompressed-len(dst) {
		return nil, errTooLarge
	}
	d, err := s2.Decode(nil, blk)
	if err != nil {
		return nil, err
	}
	return append(dst, d...), nil
}
