package binrec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// FuzzReader reads the fields ops chooses from data: a read of a field that is all there
// returns its big-endian value and consumes exactly its bytes; any other read (too short, a
// negative length, or after a failure) returns zero, consumes nothing and leaves Err at the
// first failure, which names the field it was reading.
func FuzzReader(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, []byte{0, 1, 2, 3, 4 + 5*12, 3})
	f.Add([]byte{0xff}, []byte{1, 0, 0})
	f.Add([]byte{}, []byte{4})
	f.Fuzz(func(t *testing.T, data, ops []byte) {
		r := &Reader{B: data, Short: "short ", Bad: func(what string) error { return errors.New(what) }}
		var first error
		for _, op := range ops {
			rest := r.B
			var got []byte
			var k int
			switch op % 5 {
			case 0:
				k, got = 1, []byte{r.U8("u8")}
			case 1:
				k, got = 2, binary.BigEndian.AppendUint16(nil, r.U16("u16"))
			case 2:
				k, got = 4, binary.BigEndian.AppendUint32(nil, r.U32("u32"))
			case 3:
				k, got = 8, binary.BigEndian.AppendUint64(nil, r.U64("u64"))
			default:
				k = int(op/5) - 10 // -10..40: negative lengths too
				got = r.Take(k, "bytes")
			}
			if first == nil && k >= 0 && k <= len(rest) {
				if r.Err != nil || !bytes.Equal(got, rest[:k]) || len(r.B) != len(rest)-k {
					t.Fatalf("read of %d bytes from %x: %x, %d left, err %v", k, rest, got, len(r.B), r.Err)
				}
				continue
			}
			if first == nil {
				first = r.Err
				if first == nil || !strings.HasPrefix(first.Error(), "short ") {
					t.Fatalf("read of %d bytes from %d: err %v", k, len(rest), first)
				}
			}
			if r.Err != first || len(r.B) != len(rest) || bytes.Count(got, []byte{0}) != len(got) {
				t.Fatalf("read after a failure: %x, %d left (had %d), err %v (first %v)", got, len(r.B), len(rest), r.Err, first)
			}
		}
	})
}
