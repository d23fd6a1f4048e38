package gateway

import "net"

// ServeConnAs serves c as a connection of a listener with protocol p (tests: in-memory
// connections with the peer address they report).
func ServeConnAs(s *Server, c net.Conn, p SecurityProtocol) { s.serveConn(c, listenerInfo{proto: p}) }

// AuthThrottleStats returns the brute-force lockouts begun and attempts refused so far.
func AuthThrottleStats(s *Server) (lockouts, refused int) { return s.throttle.stats() }
