package endpoint

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// markCE sets the ECN field of the received datagram whose control data is oob to
// Congestion Experienced (RFC 3168), as a router with a full queue would: only if the
// sender marked it ECN-capable (ECT(0) or ECT(1)); a Not-ECT datagram is left as it is.
// It reports whether it marked. quic-go reads the field from this control message (IP_TOS
// or IPV6_TCLASS, which it asks the kernel for) and reports it to the sender in its ACKs.
func markCE(oob []byte) bool {
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return false
		}
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_TOS && len(data) >= 1:
			return setCE(&data[0])
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_TCLASS && len(data) >= 4:
			// An int in host byte order.
			v := binary.NativeEndian.Uint32(data)
			b := byte(v)
			if !setCE(&b) {
				return false
			}
			binary.NativeEndian.PutUint32(data, v&^0xff|uint32(b))
			return true
		}
		oob = rest
	}
	return false
}

// ecnMask covers the ECN field of the IPv4 TOS / IPv6 traffic class byte; ecnCE is
// Congestion Experienced.
const (
	ecnMask = 0x3
	ecnCE   = 0x3
)

func setCE(b *byte) bool {
	if *b&ecnMask == 0 { // Not-ECT: the sender cannot take a mark
		return false
	}
	*b |= ecnCE
	return true
}
