package kafkawire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// compressBatch rewrites an uncompressed batch's records with zstd (attributes codec 4).
func compressBatch(t testing.TB, b []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	out := append([]byte(nil), b[:61]...)
	out = enc.EncodeAll(b[61:], out)
	binary.BigEndian.PutUint16(out[21:], 4)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], castagnoli))
	return out
}

func stampBase(b []byte, base int64) []byte {
	binary.BigEndian.PutUint64(b, uint64(base))
	return b
}

func TestDownConvert(t *testing.T) {
	b1 := stampBase(AppendRecordBatch(nil, []BatchRecord{{Timestamp: 1000, Key: []byte("k0"), Value: []byte("v0")}, {Timestamp: 1005, Value: []byte("v1")}}), 10)
	b2 := stampBase(compressBatch(t, AppendRecordBatch(nil, []BatchRecord{{Timestamp: 2000, Key: nil, Value: []byte("v2")}, {Timestamp: 2001, Key: []byte("k3"), Value: nil}})), 12)
	control := stampBase(AppendRecordBatch(nil, []BatchRecord{{Timestamp: 3000, Value: []byte("marker")}}), 14)
	binary.BigEndian.PutUint16(control[21:], 0x20)
	binary.BigEndian.PutUint32(control[17:], crc32.Checksum(control[21:], castagnoli))
	stored := bytes.Join([][]byte{b1, b2, control}, nil)
	partial := append(append([]byte(nil), stored...), b1[:30]...)

	for _, magic := range []int8{0, 1} {
		ms, err := DownConvert(nil, partial, magic, 11)
		if err != nil {
			t.Fatalf("magic %d: %v", magic, err)
		}
		// Read it back with the Produce-side reader, which checks every CRC.
		var msgs []legacyMsg
		if err := readMessageSet(ms, &msgs, false); err != nil {
			t.Fatalf("magic %d: output unreadable: %v", magic, err)
		}
		want := []legacyMsg{{1005, nil, []byte("v1")}, {2000, nil, []byte("v2")}, {2001, []byte("k3"), nil}}
		if len(msgs) != len(want) {
			t.Fatalf("magic %d: %d messages, want %d", magic, len(msgs), len(want))
		}
		var offs []int64
		for p := ms; len(p) > 0; p = p[12+binary.BigEndian.Uint32(p[8:]):] {
			offs = append(offs, int64(binary.BigEndian.Uint64(p)))
			if p[16] != byte(magic) {
				t.Fatalf("magic %d: message magic %d", magic, p[16])
			}
		}
		if offs[0] != 11 || offs[1] != 12 || offs[2] != 13 {
			t.Fatalf("magic %d: offsets %v", magic, offs)
		}
		for i, m := range msgs {
			wantTS := want[i].Timestamp
			if magic == 0 {
				wantTS = -1
			}
			if m.Timestamp != wantTS || !bytes.Equal(m.Value, want[i].Value) || (m.Key == nil) != (want[i].Key == nil) || !bytes.Equal(m.Key, want[i].Key) {
				t.Fatalf("magic %d: message %d = %+v, want %+v", magic, i, m, want[i])
			}
		}
	}

	bad := append([]byte(nil), b1...)
	bad[len(bad)-1] ^= 1
	if _, err := DownConvert(nil, bad, 1, 0); !errors.Is(err, ErrCorruptMessageSet) {
		t.Fatalf("bad crc: %v", err)
	}
	if _, err := DownConvert(nil, b1, 2, 0); !errors.Is(err, ErrCorruptMessageSet) {
		t.Fatalf("magic 2 target: %v", err)
	}
	if ms, err := DownConvert(nil, nil, 1, 0); err != nil || len(ms) != 0 {
		t.Fatalf("empty: %v %x", err, ms)
	}
}

// FuzzDownConvert: arbitrary stored bytes never panic, and whatever is converted is a valid
// legacy message set.
func FuzzDownConvert(f *testing.F) {
	b := stampBase(AppendRecordBatch(nil, []BatchRecord{{Timestamp: 5, Key: []byte("k"), Value: []byte("v")}}), 3)
	f.Add(b, int8(1), int64(0))
	f.Add(compressBatch(f, b), int8(0), int64(3))
	f.Fuzz(func(t *testing.T, in []byte, magic int8, min int64) {
		ms, err := DownConvert(nil, in, magic, min)
		if err != nil && !errors.Is(err, ErrCorruptMessageSet) {
			t.Fatalf("error %v does not wrap ErrCorruptMessageSet", err)
		}
		if len(ms) > 0 {
			var msgs []legacyMsg
			if rerr := readMessageSet(ms, &msgs, false); rerr != nil {
				t.Fatalf("converted output unreadable: %v", rerr)
			}
		}
	})
}
