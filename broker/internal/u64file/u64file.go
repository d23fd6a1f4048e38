// Package u64file is the format of the broker's one-number files (the producer id block end
// in producer_ids, a group store's current-generation): 14 bytes, big-endian, a two-byte
// magic, the number (u64) and the CRC-32C of the first 10 bytes (u32). The broker and the
// group store share it so that both files are read and written by one piece of code.
package u64file

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Len is the length of a file.
const Len = 14

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encode returns the file holding v under magic (two bytes).
func Encode(magic string, v uint64) []byte {
	b := make([]byte, Len)
	copy(b, magic[:2])
	binary.BigEndian.PutUint64(b[2:], v)
	binary.BigEndian.PutUint32(b[10:], crc32.Checksum(b[:10], castagnoli))
	return b
}

// Decode returns the number in b, a file under magic; its errors begin with name.
func Decode(b []byte, magic, name string) (uint64, error) {
	if len(b) != Len || string(b[:2]) != magic[:2] {
		return 0, fmt.Errorf("%s: bad header or length %d", name, len(b))
	}
	if want, got := binary.BigEndian.Uint32(b[10:]), crc32.Checksum(b[:10], castagnoli); want != got {
		return 0, fmt.Errorf("%s: checksum mismatch", name)
	}
	return binary.BigEndian.Uint64(b[2:]), nil
}
