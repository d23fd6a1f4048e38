package kafkawire

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// legacyMessage encodes one magic 0/1 message with its offset and size prefix.
func legacyMessage(offset int64, magic, attrs byte, ts int64, key, value []byte) []byte {
	m := []byte{0, 0, 0, 0, magic, attrs}
	if magic == 1 {
		m = binary.BigEndian.AppendUint64(m, uint64(ts))
	}
	for _, b := range [][]byte{key, value} {
		if b == nil {
			m = binary.BigEndian.AppendUint32(m, 0xffffffff)
			continue
		}
		m = binary.BigEndian.AppendUint32(m, uint32(len(b)))
		m = append(m, b...)
	}
	binary.BigEndian.PutUint32(m, crc32.ChecksumIEEE(m[4:]))
	out := binary.BigEndian.AppendUint64(nil, uint64(offset))
	out = binary.BigEndian.AppendUint32(out, uint32(len(m)))
	return append(out, m...)
}

func compressLegacy(t testing.TB, codec byte, in []byte) []byte {
	var buf bytes.Buffer
	switch codec {
	case 1:
		w := gzip.NewWriter(&buf)
		w.Write(in)
		w.Close()
	case 2: // xerial framing, as the Java client writes it
		buf.Write(xerialMagic)
		buf.Write([]byte{0, 0, 0, 1, 0, 0, 0, 1})
		blk := snappy.Encode(nil, in)
		binary.Write(&buf, binary.BigEndian, uint32(len(blk)))
		buf.Write(blk)
	case 4: // raw snappy block (codec 2 on the wire)
		return snappy.Encode(nil, in)
	case 3:
		w := lz4.NewWriter(&buf)
		w.Write(in)
		w.Close()
	}
	return buf.Bytes()
}

// decodeBatch parses a v2 batch: header fields, CRC-32C, and each record.
func decodeBatch(t *testing.T, b []byte) (kmsg.RecordBatch, []kmsg.Record) {
	t.Helper()
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	if int(rb.Length) != len(b)-12 || rb.Magic != 2 {
		t.Fatalf("length %d for %d bytes, magic %d", rb.Length, len(b), rb.Magic)
	}
	if crc := crc32.Checksum(b[21:], castagnoli); uint32(rb.CRC) != crc {
		t.Fatalf("crc %x, computed %x", uint32(rb.CRC), crc)
	}
	recs := make([]kmsg.Record, rb.NumRecords)
	rest := rb.Records
	for i := range recs {
		n, used := binary.Varint(rest)
		if used <= 0 || int(n) > len(rest)-used {
			t.Fatalf("record %d length", i)
		}
		if err := recs[i].ReadFrom(rest[:used+int(n)]); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		rest = rest[used+int(n):]
	}
	if len(rest) != 0 {
		t.Fatalf("%d trailing bytes", len(rest))
	}
	return rb, recs
}

func TestConvertMessageSet(t *testing.T) {
	for _, magic := range []byte{0, 1} {
		for _, codec := range []byte{0, 1, 2, 3, 4} {
			t.Run(fmt.Sprintf("magic=%d/codec=%d", magic, codec), func(t *testing.T) {
				var inner []byte
				for i := range 5 {
					var key []byte
					if i%2 == 0 {
						key = []byte(fmt.Sprintf("k%d", i))
					}
					inner = append(inner, legacyMessage(int64(i), magic, 0, 1000+int64(i)*10, key, bytes.Repeat([]byte{byte(i)}, i*7))...)
				}
				ms := inner
				if codec != 0 {
					wireCodec := codec
					if codec == 4 {
						wireCodec = 2
					}
					ms = legacyMessage(4, magic, wireCodec, 1040, nil, compressLegacy(t, codec, inner))
				}
				out, err := ConvertMessageSet(ms)
				if err != nil {
					t.Fatal(err)
				}
				rb, recs := decodeBatch(t, out)
				if rb.NumRecords != 5 || rb.LastOffsetDelta != 4 || rb.ProducerID != -1 || rb.Attributes != 0 {
					t.Fatalf("batch header %+v", rb)
				}
				for i, r := range recs {
					wantTS := int64(1000 + i*10)
					if magic == 0 {
						wantTS = -1
					}
					if got := rb.FirstTimestamp + r.TimestampDelta64; got != wantTS || r.OffsetDelta != int32(i) {
						t.Fatalf("record %d: ts %d offset delta %d", i, got, r.OffsetDelta)
					}
					if (i%2 == 0) != (r.Key != nil) || !bytes.Equal(r.Value, bytes.Repeat([]byte{byte(i)}, i*7)) {
						t.Fatalf("record %d: key %q value %x", i, r.Key, r.Value)
					}
				}
			})
		}
	}
}

func TestConvertMessageSetErrors(t *testing.T) {
	good := legacyMessage(0, 1, 0, 5, []byte("k"), []byte("v"))
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 1
	nested := legacyMessage(0, 1, 1, 5, nil, compressLegacy(t, 1, legacyMessage(0, 1, 1, 5, nil, compressLegacy(t, 1, good))))
	cases := map[string][]byte{
		"empty":          nil,
		"truncated":      good[:10],
		"bad crc":        badCRC,
		"bad size":       append(append([]byte(nil), good[:8]...), 0xff, 0xff, 0xff, 0x00),
		"magic 2":        legacyMessageMagic(2),
		"unknown codec":  legacyMessage(0, 1, 5, 5, nil, []byte("x")),
		"bad gzip":       legacyMessage(0, 1, 1, 5, nil, []byte("not gzip")),
		"nested":         nested,
		"empty wrapper":  legacyMessage(0, 1, 1, 5, nil, compressLegacy(t, 1, nil)),
		"trailing bytes": append(append([]byte(nil), good[:len(good)-1]...), 0, 0),
	}
	for name, in := range cases {
		if _, err := ConvertMessageSet(in); !errors.Is(err, ErrCorruptMessageSet) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func legacyMessageMagic(magic byte) []byte {
	m := legacyMessage(0, 1, 0, 5, nil, []byte("v"))
	m[16] = magic
	binary.BigEndian.PutUint32(m[12:], crc32.ChecksumIEEE(m[16:]))
	return m
}

// FuzzConvertMessageSet: the legacy message-set decoder never panics, and whatever it
// accepts converts to a well-formed v2 batch (length, CRC-32C and every record parse).
func FuzzConvertMessageSet(f *testing.F) {
	f.Add(legacyMessage(0, 0, 0, 0, []byte("k"), []byte("v")))
	f.Add(legacyMessage(3, 1, 0, 99, nil, []byte("value")))
	f.Add(legacyMessage(0, 1, 1, 5, nil, compressLegacy(f, 1, legacyMessage(0, 1, 0, 5, nil, []byte("in")))))
	f.Add(legacyMessage(0, 1, 2, 5, nil, compressLegacy(f, 2, legacyMessage(0, 1, 0, 5, nil, []byte("in")))))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := ConvertMessageSet(in)
		if err != nil {
			return
		}
		decodeBatch(t, out)
	})
}

func TestConvertMessageSetPartialTail(t *testing.T) {
	good := legacyMessage(0, 1, 0, 5, []byte("k"), []byte("v"))
	for cut := 1; cut < len(good); cut++ {
		if _, err := ConvertMessageSet(append(append([]byte(nil), good...), good[:cut]...)); !errors.Is(err, ErrCorruptMessageSet) {
			t.Fatalf("partial tail of %d bytes: %v", cut, err)
		}
	}
}
