//go:build !linux

package endpoint

import "net"

func enableGRO(*net.UDPConn) bool { return false }

func splitGRO(oob, dst []byte) (int, []byte) { return 0, append(dst, oob...) }

func gsoSize([]byte) int { return 0 }

func markCE([]byte) bool { return false }
