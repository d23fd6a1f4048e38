package brokerop

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"sync"
	"unicode/utf8"
)

// The payload codec follows postcard's rules (serde data model, as the Rust crate encodes it),
// derived from the Go struct definitions by reflection; every type's plan is built once and
// cached.
//
//	bool                 1 byte, 0x00 or 0x01 (anything else is an error)
//	uint8 / int8         1 byte as is
//	uint16/32/64         unsigned LEB128 varint
//	int16/32/64          zigzag, then unsigned LEB128 varint
//	string, []byte       varint length, then the bytes (strings must be UTF-8)
//	[]T                  varint count, then each element
//	map[K]V              varint count, then key/value pairs in ascending key order
//	[N]byte, [N]T        N elements, no length (serde tuple)
//	*T                   Option: 0x00 for nil, or 0x01 then T
//	struct               its exported fields in declaration order, no names or tags
//
// Decoding rejects truncated input, overlong varints, values that overflow the Go type, counts
// larger than the remaining input could hold, and trailing bytes.

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("brokerop: malformed payload")

type encFn func(b []byte, v reflect.Value) []byte
type decFn func(d *decoder, v reflect.Value) error

type plan struct {
	enc encFn
	dec decFn
}

var plans sync.Map // reflect.Type -> *plan

// Marshal appends the postcard encoding of v (a struct or pointer to one) to b.
func Marshal(b []byte, v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil, fmt.Errorf("brokerop: marshal nil %T", v)
		}
		rv = rv.Elem()
	}
	p, err := planFor(rv.Type())
	if err != nil {
		return nil, err
	}
	return p.enc(b, rv), nil
}

// Unmarshal decodes data, which must be exactly one postcard value, into the struct v points to.
// Byte-slice fields alias data (record sets are not copied): data must not be modified while
// the decoded value is in use.
func Unmarshal(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("brokerop: unmarshal into non-pointer %T", v)
	}
	p, err := planFor(rv.Elem().Type())
	if err != nil {
		return err
	}
	d := decoder{buf: data}
	if err := p.dec(&d, rv.Elem()); err != nil {
		return err
	}
	if len(d.buf) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.buf))
	}
	return nil
}

func planFor(t reflect.Type) (*plan, error) {
	if p, ok := plans.Load(t); ok {
		return p.(*plan), nil
	}
	p, err := build(t, map[reflect.Type]*plan{})
	if err != nil {
		return nil, err
	}
	plans.Store(t, p)
	return p, nil
}

func build(t reflect.Type, building map[reflect.Type]*plan) (*plan, error) {
	if p, ok := building[t]; ok {
		return p, nil // recursive type: the plan is filled in below before use
	}
	p := &plan{}
	building[t] = p
	switch t.Kind() {
	case reflect.Bool:
		p.enc = func(b []byte, v reflect.Value) []byte {
			if v.Bool() {
				return append(b, 1)
			}
			return append(b, 0)
		}
		p.dec = func(d *decoder, v reflect.Value) error {
			c, err := d.byte()
			if err != nil {
				return err
			}
			if c > 1 {
				return fmt.Errorf("%w: bool byte %#x", ErrMalformed, c)
			}
			v.SetBool(c == 1)
			return nil
		}
	case reflect.Uint8:
		p.enc = func(b []byte, v reflect.Value) []byte { return append(b, byte(v.Uint())) }
		p.dec = func(d *decoder, v reflect.Value) error {
			c, err := d.byte()
			v.SetUint(uint64(c))
			return err
		}
	case reflect.Int8:
		p.enc = func(b []byte, v reflect.Value) []byte { return append(b, byte(int8(v.Int()))) }
		p.dec = func(d *decoder, v reflect.Value) error {
			c, err := d.byte()
			v.SetInt(int64(int8(c)))
			return err
		}
	case reflect.Uint16, reflect.Uint32, reflect.Uint64:
		bits := t.Bits()
		p.enc = func(b []byte, v reflect.Value) []byte { return binary.AppendUvarint(b, v.Uint()) }
		p.dec = func(d *decoder, v reflect.Value) error {
			x, err := d.uvarint()
			if err != nil {
				return err
			}
			if bits < 64 && x>>bits != 0 {
				return fmt.Errorf("%w: %d overflows u%d", ErrMalformed, x, bits)
			}
			v.SetUint(x)
			return nil
		}
	case reflect.Int16, reflect.Int32, reflect.Int64:
		bits := t.Bits()
		p.enc = func(b []byte, v reflect.Value) []byte {
			x := v.Int()
			return binary.AppendUvarint(b, uint64(x<<1)^uint64(x>>63))
		}
		p.dec = func(d *decoder, v reflect.Value) error {
			u, err := d.uvarint()
			if err != nil {
				return err
			}
			x := int64(u>>1) ^ -int64(u&1)
			if bits < 64 && (x < -(1<<(bits-1)) || x > 1<<(bits-1)-1) {
				return fmt.Errorf("%w: %d overflows i%d", ErrMalformed, x, bits)
			}
			v.SetInt(x)
			return nil
		}
	case reflect.Float64:
		p.enc = func(b []byte, v reflect.Value) []byte {
			return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float()))
		}
		p.dec = func(d *decoder, v reflect.Value) error {
			s, err := d.take(8)
			if err != nil {
				return err
			}
			v.SetFloat(math.Float64frombits(binary.LittleEndian.Uint64(s)))
			return nil
		}
	case reflect.String:
		p.enc = func(b []byte, v reflect.Value) []byte {
			s := v.String()
			return append(binary.AppendUvarint(b, uint64(len(s))), s...)
		}
		p.dec = func(d *decoder, v reflect.Value) error {
			s, err := d.bytes()
			if err != nil {
				return err
			}
			if !utf8.Valid(s) {
				return fmt.Errorf("%w: string is not UTF-8", ErrMalformed)
			}
			v.SetString(string(s))
			return nil
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			p.enc = func(b []byte, v reflect.Value) []byte {
				s := v.Bytes()
				return append(binary.AppendUvarint(b, uint64(len(s))), s...)
			}
			p.dec = func(d *decoder, v reflect.Value) error {
				s, err := d.bytes()
				if err != nil {
					return err
				}
				if len(s) > 0 {
					v.SetBytes(s[:len(s):len(s)]) // aliases the input: no copy of record data
				}
				return nil
			}
			break
		}
		ep, err := build(t.Elem(), building)
		if err != nil {
			return nil, err
		}
		p.enc = func(b []byte, v reflect.Value) []byte {
			n := v.Len()
			b = binary.AppendUvarint(b, uint64(n))
			for i := 0; i < n; i++ {
				b = ep.enc(b, v.Index(i))
			}
			return b
		}
		p.dec = func(d *decoder, v reflect.Value) error {
			n, err := d.count()
			if err != nil {
				return err
			}
			if n == 0 {
				return nil
			}
			s := reflect.MakeSlice(t, n, n)
			for i := 0; i < n; i++ {
				if err := ep.dec(d, s.Index(i)); err != nil {
					return err
				}
			}
			v.Set(s)
			return nil
		}
	case reflect.Array:
		ep, err := build(t.Elem(), building)
		if err != nil {
			return nil, err
		}
		n := t.Len()
		if t.Elem().Kind() == reflect.Uint8 {
			p.enc = func(b []byte, v reflect.Value) []byte {
				for i := 0; i < n; i++ {
					b = append(b, byte(v.Index(i).Uint()))
				}
				return b
			}
			p.dec = func(d *decoder, v reflect.Value) error {
				s, err := d.take(n)
				if err != nil {
					return err
				}
				reflect.Copy(v, reflect.ValueOf(s))
				return nil
			}
			break
		}
		p.enc = func(b []byte, v reflect.Value) []byte {
			for i := 0; i < n; i++ {
				b = ep.enc(b, v.Index(i))
			}
			return b
		}
		p.dec = func(d *decoder, v reflect.Value) error {
			for i := 0; i < n; i++ {
				if err := ep.dec(d, v.Index(i)); err != nil {
					return err
				}
			}
			return nil
		}
	case reflect.Map:
		kp, err := build(t.Key(), building)
		if err != nil {
			return nil, err
		}
		vp, err := build(t.Elem(), building)
		if err != nil {
			return nil, err
		}
		p.enc = func(b []byte, v reflect.Value) []byte {
			keys := v.MapKeys()
			sort.Slice(keys, func(i, j int) bool { return lessValue(keys[i], keys[j]) })
			b = binary.AppendUvarint(b, uint64(len(keys)))
			for _, k := range keys {
				b = kp.enc(b, k)
				b = vp.enc(b, v.MapIndex(k))
			}
			return b
		}
		p.dec = func(d *decoder, v reflect.Value) error {
			n, err := d.count()
			if err != nil {
				return err
			}
			if n == 0 {
				return nil
			}
			m := reflect.MakeMapWithSize(t, n)
			for i := 0; i < n; i++ {
				k := reflect.New(t.Key()).Elem()
				if err := kp.dec(d, k); err != nil {
					return err
				}
				e := reflect.New(t.Elem()).Elem()
				if err := vp.dec(d, e); err != nil {
					return err
				}
				m.SetMapIndex(k, e)
			}
			v.Set(m)
			return nil
		}
	case reflect.Pointer:
		ep, err := build(t.Elem(), building)
		if err != nil {
			return nil, err
		}
		p.enc = func(b []byte, v reflect.Value) []byte {
			if v.IsNil() {
				return append(b, 0)
			}
			return ep.enc(append(b, 1), v.Elem())
		}
		p.dec = func(d *decoder, v reflect.Value) error {
			c, err := d.byte()
			if err != nil {
				return err
			}
			switch c {
			case 0:
				return nil
			case 1:
				e := reflect.New(t.Elem())
				if err := ep.dec(d, e.Elem()); err != nil {
					return err
				}
				v.Set(e)
				return nil
			}
			return fmt.Errorf("%w: option byte %#x", ErrMalformed, c)
		}
	case reflect.Struct:
		var fields []int
		var fps []*plan
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			fp, err := build(f.Type, building)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", t.Name(), f.Name, err)
			}
			fields = append(fields, i)
			fps = append(fps, fp)
		}
		p.enc = func(b []byte, v reflect.Value) []byte {
			for j, i := range fields {
				b = fps[j].enc(b, v.Field(i))
			}
			return b
		}
		p.dec = func(d *decoder, v reflect.Value) error {
			d.depth++
			if d.depth > maxDepth {
				return fmt.Errorf("%w: nesting deeper than %d", ErrMalformed, maxDepth)
			}
			for j, i := range fields {
				if err := fps[j].dec(d, v.Field(i)); err != nil {
					return err
				}
			}
			d.depth--
			return nil
		}
	default:
		return nil, fmt.Errorf("brokerop: no postcard mapping for %s", t)
	}
	return p, nil
}

const maxDepth = 32

func lessValue(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.String:
		return a.String() < b.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() < b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return a.Uint() < b.Uint()
	case reflect.Bool:
		return !a.Bool() && b.Bool()
	}
	return false
}

type decoder struct {
	buf   []byte
	depth int
}

func (d *decoder) byte() (byte, error) {
	if len(d.buf) == 0 {
		return 0, fmt.Errorf("%w: truncated", ErrMalformed)
	}
	c := d.buf[0]
	d.buf = d.buf[1:]
	return c, nil
}

func (d *decoder) take(n int) ([]byte, error) {
	if n < 0 || len(d.buf) < n {
		return nil, fmt.Errorf("%w: truncated", ErrMalformed)
	}
	s := d.buf[:n]
	d.buf = d.buf[n:]
	return s, nil
}

func (d *decoder) uvarint() (uint64, error) {
	x, n := binary.Uvarint(d.buf)
	if n <= 0 {
		return 0, fmt.Errorf("%w: bad varint", ErrMalformed)
	}
	d.buf = d.buf[n:]
	return x, nil
}

// count reads a length or element count; it can never exceed the bytes left, since every
// element of our types takes at least one byte.
func (d *decoder) count() (int, error) {
	x, err := d.uvarint()
	if err != nil {
		return 0, err
	}
	if x > uint64(len(d.buf)) {
		return 0, fmt.Errorf("%w: count %d exceeds the %d bytes left", ErrMalformed, x, len(d.buf))
	}
	return int(x), nil
}

func (d *decoder) bytes() ([]byte, error) {
	n, err := d.count()
	if err != nil {
		return nil, err
	}
	return d.take(n)
}

// sizeHint estimates the encoded size of v: the bulk of a payload is its byte slices and
// strings, and the hint lets an encoder allocate once instead of growing by copies.
func sizeHint(v reflect.Value, depth int) int {
	if depth > maxDepth {
		return 0
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return 1
		}
		return 1 + sizeHint(v.Elem(), depth+1)
	case reflect.String:
		return v.Len() + 5
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return v.Len() + 5
		}
		n := 5
		for i := 0; i < v.Len(); i++ {
			n += sizeHint(v.Index(i), depth+1)
		}
		return n
	case reflect.Struct:
		n := 0
		for i := 0; i < v.NumField(); i++ {
			n += sizeHint(v.Field(i), depth+1)
		}
		return n
	case reflect.Map:
		return 5 + 16*v.Len()
	case reflect.Array:
		return v.Len()
	}
	return 10
}
