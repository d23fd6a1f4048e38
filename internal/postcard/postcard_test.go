package postcard

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"testing"
)

func TestGoldenPrimitives(t *testing.T) {
	cases := []struct {
		name string
		got  []byte
		hex  string
	}{
		{"uvarint 0", AppendUvarint(nil, 0), "00"},
		{"uvarint 127", AppendUvarint(nil, 127), "7f"},
		{"uvarint 300", AppendUvarint(nil, 300), "ac02"},
		{"uvarint max u64", AppendUvarint(nil, math.MaxUint64), "ffffffffffffffffff01"},
		{"zigzag -1", AppendZigzag(nil, -1), "01"},
		{"zigzag 1", AppendZigzag(nil, 1), "02"},
		{"zigzag 1 MiB", AppendZigzag(nil, 1<<20), "80808001"},
		{"zigzag min i64", AppendZigzag(nil, math.MinInt64), "ffffffffffffffffff01"},
		{"bool", AppendBool(AppendBool(nil, true), false), "0100"},
		{"bytes", AppendBytes(nil, []byte{0xaa, 0xbb}), "02aabb"},
		{"string", AppendString(nil, "t"), "0174"},
		{"option", AppendOption(AppendOption(nil, false), true), "0001"},
	}
	for _, c := range cases {
		if hex.EncodeToString(c.got) != c.hex {
			t.Errorf("%s: got %x, want %s", c.name, c.got, c.hex)
		}
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	var b []byte
	b = AppendUvarint(b, 65535)
	b = AppendUvarint(b, math.MaxUint32)
	b = AppendUvarint(b, math.MaxUint64)
	b = AppendZigzag(b, math.MinInt16)
	b = AppendZigzag(b, math.MaxInt32)
	b = AppendZigzag(b, math.MinInt64)
	b = AppendBool(b, true)
	b = AppendOption(b, false)
	b = AppendString(b, "héllo")
	b = AppendBytes(b, nil)
	b = append(b, 9, 8, 7)
	d := NewDecoder(b)
	u16, _ := d.U16()
	u32, _ := d.U32()
	u64, _ := d.U64()
	i16, _ := d.I16()
	i32, _ := d.I32()
	i64, _ := d.I64()
	bo, _ := d.Bool()
	op, _ := d.Option()
	s, _ := d.String()
	by, _ := d.Bytes()
	arr, err := d.Take(3)
	if err != nil || u16 != 65535 || u32 != math.MaxUint32 || u64 != math.MaxUint64 || i16 != math.MinInt16 ||
		i32 != math.MaxInt32 || i64 != math.MinInt64 || !bo || op || s != "héllo" || by != nil ||
		!bytes.Equal(arr, []byte{9, 8, 7}) || d.Remaining() != 0 {
		t.Fatalf("round trip: %v %v %v %v %v %v %v %v %q %v %v err=%v left=%d", u16, u32, u64, i16, i32, i64, bo, op, s, by, arr, err, d.Remaining())
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name string
		in   string
		read func(d *Decoder) error
		want error
	}{
		{"empty byte", "", func(d *Decoder) error { _, err := d.Byte(); return err }, ErrShort},
		{"truncated varint", "80", func(d *Decoder) error { _, err := d.U64(); return err }, ErrShort},
		{"u16 last byte too big", "ffff04", func(d *Decoder) error { _, err := d.U16(); return err }, ErrBadVarint},
		{"u16 too long", "80808000", func(d *Decoder) error { _, err := d.U16(); return err }, ErrBadVarint},
		{"u32 overflow", "8080808020", func(d *Decoder) error { _, err := d.I32(); return err }, ErrBadVarint},
		{"u64 too long", "8080808080808080808001", func(d *Decoder) error { _, err := d.U64(); return err }, ErrBadVarint},
		{"bool 2", "02", func(d *Decoder) error { _, err := d.Bool(); return err }, ErrBadBool},
		{"option 2", "02", func(d *Decoder) error { _, err := d.Option(); return err }, ErrBadOption},
		{"count beyond input", "05aabb", func(d *Decoder) error { _, err := d.Len(); return err }, ErrShort},
		{"huge count", "ffffffff0f", func(d *Decoder) error { _, err := d.Len(); return err }, ErrShort},
		{"bad utf-8", "01ff", func(d *Decoder) error { _, err := d.String(); return err }, ErrBadUTF8},
		{"take beyond input", "0102", func(d *Decoder) error { _, err := d.Take(3); return err }, ErrShort},
	}
	for _, c := range cases {
		in, _ := hex.DecodeString(c.in)
		d := NewDecoder(in)
		if err := c.read(&d); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

// FuzzDecoder reads arbitrary input as a sequence of every primitive and checks that each value
// read re-encodes to a prefix-stable form that decodes to the same value.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte{0xac, 0x02, 0x01, 0x01, 0x02, 0x61, 0x62})
	f.Add([]byte{0xff, 0xff, 0x03, 0x80, 0x80, 0x80, 0x80, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(data)
		for step := 0; d.Remaining() > 0; step++ {
			before := d.Remaining()
			var enc []byte
			var check func(d *Decoder) bool
			var ok bool
			switch step % 6 {
			case 0:
				enc, check, ok = reread(&d, (*Decoder).U64, AppendUvarint, eq)
			case 1:
				enc, check, ok = reread(&d, (*Decoder).I32, func(b []byte, v int32) []byte { return AppendZigzag(b, int64(v)) }, eq)
			case 2:
				enc, check, ok = reread(&d, (*Decoder).I16, func(b []byte, v int16) []byte { return AppendZigzag(b, int64(v)) }, eq)
			case 3:
				enc, check, ok = reread(&d, (*Decoder).Bool, AppendBool, eq)
			case 4:
				enc, check, ok = reread(&d, (*Decoder).Bytes, AppendBytes, bytes.Equal)
			case 5:
				enc, check, ok = reread(&d, (*Decoder).String, AppendString, eq)
			}
			if !ok {
				return
			}
			if d.Remaining() >= before {
				t.Fatalf("step %d consumed nothing", step)
			}
			if len(enc) > before-d.Remaining() {
				t.Fatalf("step %d: canonical encoding %x longer than the input read", step, enc)
			}
			e := NewDecoder(enc)
			if !check(&e) || e.Remaining() != 0 {
				t.Fatalf("step %d: %x does not decode back", step, enc)
			}
		}
	})
}

func eq[T comparable](a, b T) bool { return a == b }

// reread reads one value with read and returns its canonical encoding and a check that a
// decoder reads that same value back; ok is false when d held no such value.
func reread[T any](d *Decoder, read func(*Decoder) (T, error), app func([]byte, T) []byte, same func(a, b T) bool) (enc []byte, check func(*Decoder) bool, ok bool) {
	v, err := read(d)
	if err != nil {
		return nil, nil, false
	}
	return app(nil, v), func(d *Decoder) bool { w, err := read(d); return err == nil && same(w, v) }, true
}
