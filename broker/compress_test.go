package broker

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

func TestDecompressRecords(t *testing.T) {
	plain := bytes.Repeat([]byte("kafka records 0123456789 "), 400)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(plain)
	w.Close()
	var lz bytes.Buffer
	lw := lz4.NewWriter(&lz)
	lw.Write(plain)
	lw.Close()
	zenc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	zs := zenc.EncodeAll(plain, nil)
	zenc.Close()
	raw := s2.EncodeSnappy(nil, plain)
	// xerial: magic, version 1, compat 1, then two chunks
	xer := append([]byte{}, xerialMagic...)
	xer = binary.BigEndian.AppendUint32(xer, 1)
	xer = binary.BigEndian.AppendUint32(xer, 1)
	for _, part := range [][]byte{plain[:3000], plain[3000:]} {
		blk := s2.EncodeSnappy(nil, part)
		xer = binary.BigEndian.AppendUint32(xer, uint32(len(blk)))
		xer = append(xer, blk...)
	}
	for _, tc := range []struct {
		name  string
		codec uint16
		in    []byte
	}{
		{"none", 0, plain}, {"gzip", 1, gz.Bytes()}, {"snappy raw", 2, raw}, {"snappy xerial", 2, xer},
		{"lz4", 3, lz.Bytes()}, {"zstd", 4, zs},
	} {
		got, err := decompressRecords(tc.codec, tc.in)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%s: %d bytes, err %v", tc.name, len(got), err)
		}
		if len(tc.in) > 20 && tc.codec != 0 {
			if _, err := decompressRecords(tc.codec, tc.in[:len(tc.in)/2]); err == nil {
				t.Errorf("%s: truncated input decoded", tc.name)
			}
		}
	}
	if _, err := decompressRecords(5, plain); err == nil {
		t.Error("codec 5 accepted")
	}
	// A bomb is refused, not inflated.
	defer func(old int) { maxDecompressed = old }(maxDecompressed)
	maxDecompressed = 1 << 20
	zeros := make([]byte, maxDecompressed+1024)
	var bomb bytes.Buffer
	bw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	bw.Write(zeros)
	bw.Close()
	if _, err := decompressRecords(1, bomb.Bytes()); err != errTooLarge {
		t.Errorf("gzip bomb: %v", err)
	}
}

// FuzzFindInBatches: the timestamp lookup walks stored batches and their (possibly
// compressed) records; arbitrary bytes never make it panic, and a hit lies in the batch.
func FuzzFindInBatches(f *testing.F) {
	f.Add(makeBatch(false, vals(10, "a", "b", "c")...), int64(11))
	f.Add(makeBatch(true, vals(10, "a", "b")...), int64(11))
	f.Add([]byte{}, int64(0))
	f.Fuzz(func(t *testing.T, data []byte, ts int64) {
		findInBatches(data, ts)
		for codec := range uint16(5) {
			decompressRecords(codec, data)
		}
	})
}
