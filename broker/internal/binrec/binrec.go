// Package binrec reads the fields of the coordinators' binary records (broker/share and
// broker/txn each decode their own layout with it): big-endian fixed-size fields and byte
// runs, where the first failure sticks and every later read returns a zero value.
package binrec

import "encoding/binary"

// Reader reads fields from the front of B. A failure is kept in Err: Bad makes it from a
// description of what is wrong, and Short is put before the name of a field that is not
// all there.
type Reader struct {
	B     []byte
	Err   error
	Short string
	Bad   func(what string) error
}

// Fail records what is wrong, unless a failure is recorded already.
func (r *Reader) Fail(what string) {
	if r.Err == nil {
		r.Err = r.Bad(what)
	}
}

// Take returns the next k bytes, or nil (failing r) when they are not there or r has
// failed already.
func (r *Reader) Take(k int, what string) []byte {
	if r.Err != nil || k < 0 || k > len(r.B) {
		r.Fail(r.Short + what)
		return nil
	}
	v := r.B[:k]
	r.B = r.B[k:]
	return v
}

// fixed reads the k bytes of a fixed-size field with get, or returns 0 when they are not
// there (failing r).
func fixed[T uint8 | uint16 | uint32 | uint64](r *Reader, k int, what string, get func([]byte) T) T {
	if v := r.Take(k, what); v != nil {
		return get(v)
	}
	return 0
}

// U8 reads a byte.
func (r *Reader) U8(what string) uint8 {
	return fixed(r, 1, what, func(b []byte) uint8 { return b[0] })
}

// U16 reads a big-endian uint16.
func (r *Reader) U16(what string) uint16 { return fixed(r, 2, what, binary.BigEndian.Uint16) }

// U32 reads a big-endian uint32.
func (r *Reader) U32(what string) uint32 { return fixed(r, 4, what, binary.BigEndian.Uint32) }

// U64 reads a big-endian uint64.
func (r *Reader) U64(what string) uint64 { return fixed(r, 8, what, binary.BigEndian.Uint64) }
