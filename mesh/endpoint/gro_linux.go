package endpoint

import (
	"encoding/binary"
	"net"

	"golang.org/x/sys/unix"
)

// enableGRO turns on UDP generic receive offload (Options.DisableGRO keeps
// it off, for comparison and as an escape hatch).
func enableGRO(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1)
	}); err != nil {
		return false
	}
	return serr == nil
}

// splitGRO returns the GRO segment size carried in oob (0 if none) and
// appends every other control message to dst.
func splitGRO(oob, dst []byte) (int, []byte) {
	size := 0
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			break
		}
		whole := oob[:len(oob)-len(rest)]
		if h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_GRO && len(data) >= 2 {
			if len(data) >= 4 {
				size = int(binary.NativeEndian.Uint32(data))
			} else {
				size = int(binary.NativeEndian.Uint16(data))
			}
		} else {
			dst = append(dst, whole...)
		}
		oob = rest
	}
	return size, dst
}

// gsoSize returns the UDP_SEGMENT size in oob (0 if none).
func gsoSize(oob []byte) int {
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return 0
		}
		if h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_SEGMENT && len(data) >= 2 {
			return int(binary.NativeEndian.Uint16(data))
		}
		oob = rest
	}
	return 0
}
