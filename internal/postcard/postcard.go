package postcard

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"
)

// Decoding errors. Every error a Decoder returns is one of these.
var (
	ErrShort     = errors.New("postcard: unexpected end of input")
	ErrBadVarint = errors.New("postcard: bad varint")
	ErrBadBool   = errors.New("postcard: bad bool")
	ErrBadOption = errors.New("postcard: bad option tag")
	ErrBadUTF8   = errors.New("postcard: string is not UTF-8")
)

// ---- encoding ----

// AppendUvarint appends v as an unsigned LEB128 varint (u16, u32, u64, usize, enum tags,
// lengths and counts).
func AppendUvarint(b []byte, v uint64) []byte {
	if v < 0x80 {
		return append(b, byte(v))
	}
	return binary.AppendUvarint(b, v)
}

// AppendZigzag appends v zigzag-encoded, then as a varint (i16, i32, i64).
func AppendZigzag(b []byte, v int64) []byte {
	return AppendUvarint(b, uint64(v<<1)^uint64(v>>63))
}

// AppendBool appends v as one byte, 0x00 or 0x01.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// AppendBytes appends p with its varint length in front.
func AppendBytes(b, p []byte) []byte {
	return append(AppendUvarint(b, uint64(len(p))), p...)
}

// AppendString appends s with its varint length in front.
func AppendString(b []byte, s string) []byte {
	return append(AppendUvarint(b, uint64(len(s))), s...)
}

// AppendOption appends an option's tag: 0x01 when the value follows, 0x00 for None.
func AppendOption(b []byte, some bool) []byte { return AppendBool(b, some) }

// ---- decoding ----

// Decoder reads postcard values from the front of a byte slice. The zero value reads nothing;
// use NewDecoder. Byte strings it returns alias the input.
type Decoder struct {
	b []byte
}

// NewDecoder returns a decoder reading b.
func NewDecoder(b []byte) Decoder { return Decoder{b: b} }

// Rest returns the bytes not read yet.
func (d *Decoder) Rest() []byte { return d.b }

// Remaining is the number of bytes not read yet.
func (d *Decoder) Remaining() int { return len(d.b) }

// Byte reads one byte (u8, i8).
func (d *Decoder) Byte() (byte, error) {
	if len(d.b) == 0 {
		return 0, ErrShort
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c, nil
}

// Take reads n bytes ([u8; n] arrays, fixed-size fields); the result aliases the input.
func (d *Decoder) Take(n int) ([]byte, error) {
	if n < 0 || len(d.b) < n {
		return nil, ErrShort
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p, nil
}

// Varint reads a varint of at most maxLen bytes whose last byte is at most maxLast, as
// postcard bounds each width: u16 3 bytes / 0x03, u32 5 / 0x0f, u64 10 / 0x01.
func (d *Decoder) Varint(maxLen int, maxLast byte) (uint64, error) {
	if len(d.b) > 0 && d.b[0] < 0x80 {
		v := uint64(d.b[0])
		d.b = d.b[1:]
		return v, nil
	}
	var v uint64
	for i := 0; i < maxLen; i++ {
		if i >= len(d.b) {
			return 0, ErrShort
		}
		c := d.b[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if i == maxLen-1 && c > maxLast {
				return 0, ErrBadVarint
			}
			d.b = d.b[i+1:]
			return v, nil
		}
	}
	return 0, ErrBadVarint
}

// U16 reads a u16 varint.
func (d *Decoder) U16() (uint16, error) {
	v, err := d.Varint(3, 0x03)
	return uint16(v), err
}

// U32 reads a u32 varint (also enum tags).
func (d *Decoder) U32() (uint32, error) {
	v, err := d.Varint(5, 0x0f)
	return uint32(v), err
}

// U64 reads a u64 varint.
func (d *Decoder) U64() (uint64, error) { return d.Varint(10, 0x01) }

// I16 reads a zigzag i16.
func (d *Decoder) I16() (int16, error) {
	u, err := d.U16()
	return int16(u>>1) ^ -int16(u&1), err
}

// I32 reads a zigzag i32.
func (d *Decoder) I32() (int32, error) {
	u, err := d.U32()
	return int32(u>>1) ^ -int32(u&1), err
}

// I64 reads a zigzag i64.
func (d *Decoder) I64() (int64, error) {
	u, err := d.U64()
	return int64(u>>1) ^ -int64(u&1), err
}

// Bool reads a bool: 0x00 or 0x01, anything else is ErrBadBool.
func (d *Decoder) Bool() (bool, error) { return d.flag(ErrBadBool) }

// Option reads an option tag and reports whether a value follows.
func (d *Decoder) Option() (bool, error) { return d.flag(ErrBadOption) }

// flag reads a byte that must be 0x00 (false) or 0x01 (true); anything else is bad.
func (d *Decoder) flag(bad error) (bool, error) {
	c, err := d.Byte()
	if err != nil {
		return false, err
	}
	if c > 1 {
		return false, bad
	}
	return c == 1, nil
}

// Len reads a length or element count (a usize varint). It is never more than the bytes
// left, since every element of a sequence takes at least one byte: a larger count is
// ErrShort, so a caller may allocate count elements.
func (d *Decoder) Len() (int, error) {
	v, err := d.U64()
	if err != nil {
		return 0, err
	}
	if v > uint64(len(d.b)) {
		return 0, ErrShort
	}
	return int(v), nil
}

// Bytes reads a length-prefixed byte string; the result aliases the input (nil when empty).
func (d *Decoder) Bytes() ([]byte, error) {
	n, err := d.Len()
	if err != nil || n == 0 {
		return nil, err
	}
	return d.Take(n)
}

// String reads a length-prefixed UTF-8 string.
func (d *Decoder) String() (string, error) {
	p, err := d.Bytes()
	if err != nil {
		return "", err
	}
	if !utf8.Valid(p) {
		return "", ErrBadUTF8
	}
	return string(p), nil
}
