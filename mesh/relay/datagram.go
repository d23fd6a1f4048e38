package relay

import (
	"encoding/binary"
	"fmt"
)

// MaxDatagramsPayload is the largest batch iroh 0.28's magicsock packs into one SendPacket:
// 64 KiB minus 32 bytes.
const MaxDatagramsPayload = MaxPacketSize - KeyLen

// AppendDatagram appends one datagram to a relay payload batch: its length as a u16
// little-endian, then its bytes. Datagrams longer than 65535 bytes cannot be framed.
func AppendDatagram(b, datagram []byte) ([]byte, error) {
	if len(datagram) > 0xffff {
		return b, fmt.Errorf("relay: datagram of %d bytes does not fit a u16 length", len(datagram))
	}
	b = binary.LittleEndian.AppendUint16(b, uint16(len(datagram)))
	return append(b, datagram...), nil
}

// SplitDatagrams splits a relay payload into its length-prefixed datagrams, appending each (an
// alias into payload) to dst. A truncated item ends the parse with an error; the datagrams
// before it are still returned, as iroh delivers them too.
func SplitDatagrams(payload []byte, dst [][]byte) ([][]byte, error) {
	for len(payload) > 0 {
		if len(payload) < 2 {
			return dst, malformed("datagram batch: %d trailing byte(s)", len(payload))
		}
		n := int(binary.LittleEndian.Uint16(payload))
		payload = payload[2:]
		if n > len(payload) {
			return dst, malformed("datagram batch: item of %d bytes, %d left", n, len(payload))
		}
		dst = append(dst, payload[:n:n])
		payload = payload[n:]
	}
	return dst, nil
}
