package brokerop

import (
	"errors"
	"fmt"

	"github.com/meshkafka/meshkafka/internal/postcard"
)

// The payload codec follows postcard's rules (serde data model, as the Rust crate encodes it;
// the primitives are internal/postcard's). Each struct's encoder and decoder are generated
// from its Go definition (ops_gen.go, by internal/cmd/opgen; see Service):
//
//	bool                 1 byte, 0x00 or 0x01 (anything else is an error)
//	uint8 / int8         1 byte as is
//	uint16/32/64         unsigned LEB128 varint (at most 3/5/10 bytes)
//	int16/32/64          zigzag, then unsigned LEB128 varint of that width
//	string, []byte       varint length, then the bytes (strings must be UTF-8)
//	[]T                  varint count, then each element
//	map[K]V              varint count, then key/value pairs in ascending key order
//	[N]byte              N bytes, no length (serde tuple)
//	*T                   Option: 0x00 for nil, or 0x01 then T
//	struct               its exported fields in declaration order, no names or tags
//
// Decoding rejects truncated input, over-long varints, values that overflow the Go type,
// counts larger than the remaining input could hold, and trailing bytes. Byte-slice fields
// alias the input (record sets are not copied); an empty one decodes as nil, as does an
// empty sequence or map.

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("brokerop: malformed payload")

// Marshal appends the postcard encoding of v (a pointer to a Message struct) to b.
func Marshal(b []byte, v any) ([]byte, error) {
	m, ok := v.(Message)
	if !ok {
		return nil, fmt.Errorf("brokerop: no postcard mapping for %T", v)
	}
	return m.AppendPostcard(b), nil
}

// Unmarshal decodes data, which must be exactly one postcard value, into the struct v points to.
// Byte-slice fields alias data (record sets are not copied): data must not be modified while
// the decoded value is in use.
func Unmarshal(data []byte, v any) error {
	m, ok := v.(Message)
	if !ok {
		return fmt.Errorf("brokerop: unmarshal into %T, not a brokerop message", v)
	}
	d := postcard.NewDecoder(data)
	if err := m.decode(&d); err != nil {
		return malformed(err)
	}
	if d.Remaining() != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, d.Remaining())
	}
	return nil
}

func malformed(err error) error { return fmt.Errorf("%w: %w", ErrMalformed, err) }
