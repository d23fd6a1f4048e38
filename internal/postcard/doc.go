// Package postcard holds the primitives of the postcard wire format (the Rust crate's encoding
// of the serde data model) that every postcard codec of the project is built from: the gossip
// frames of mesh/gossip/proto (whose Rust-written frames are the goldens) and the KafkaOp
// structs of broker/brokerop (whose per-struct code is generated, see internal/cmd/opgen).
//
//	bool                 1 byte, 0x00 or 0x01 (anything else is an error)
//	u8 / i8              1 byte as is
//	u16 / u32 / u64      unsigned LEB128 varint of at most 3 / 5 / 10 bytes
//	i16 / i32 / i64      zigzag, then the varint of the unsigned width
//	string, bytes        varint length, then the bytes (strings must be UTF-8)
//	seq<T>               varint count, then each element
//	map<K, V>            varint count, then key/value pairs
//	[T; N]               N elements, no length (serde tuple)
//	option<T>            0x00 for None, or 0x01 then T
//	enum                 varint variant index, then the variant's fields
//	struct               its fields in declaration order, no names or tags
//
// Encoding is a set of Append functions; decoding a Decoder over a byte slice that returns
// one of the package's sentinel errors for truncated input, over-long varints, bad bool or
// option bytes, counts larger than the input left could hold, and invalid UTF-8. The package
// is a leaf: it imports only the standard library, so both mesh and broker may use it.
package postcard
