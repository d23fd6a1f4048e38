package stun

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v2"
)

// DefaultPort is the STUN port iroh's relays use.
const DefaultPort = 3478

// magicCookie is the fixed STUN value at bytes 4..8 (RFC 5389).
const magicCookie = 0x2112A442

// TxID is a STUN transaction id.
type TxID = [stun.TransactionIDSize]byte

// Is reports whether p looks like a STUN message: iroh's demux rule.
func Is(p []byte) bool {
	return len(p) >= 20 && p[0]&0xc0 == 0 && binary.BigEndian.Uint32(p[4:8]) == magicCookie
}

// Request builds a Binding request with FINGERPRINT, as iroh sends.
func Request() (TxID, []byte) {
	tx := stun.NewTransactionID()
	m := stun.MustBuild(stun.NewTransactionIDSetter(tx), stun.BindingRequest, stun.Fingerprint)
	return tx, m.Raw
}

// Errors of ParseResponse.
var (
	ErrNotResponse = errors.New("stun: not a binding success response")
	ErrTxID        = errors.New("stun: transaction id mismatch")
	ErrNoAddress   = errors.New("stun: response carries no mapped address")
)

// ParseResponse decodes a Binding success response for tx and returns the mapped address:
// XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS when the former is absent.
func ParseResponse(p []byte, tx TxID) (netip.AddrPort, error) {
	m := &stun.Message{Raw: append([]byte(nil), p...)}
	if err := m.Decode(); err != nil {
		return netip.AddrPort{}, fmt.Errorf("stun: %w", err)
	}
	if m.Type != stun.BindingSuccess {
		return netip.AddrPort{}, ErrNotResponse
	}
	if m.TransactionID != tx {
		return netip.AddrPort{}, ErrTxID
	}
	var xa stun.XORMappedAddress
	if err := xa.GetFrom(m); err == nil {
		return addrPort(xa.IP, xa.Port)
	}
	var ma stun.MappedAddress
	if err := ma.GetFrom(m); err == nil {
		return addrPort(ma.IP, ma.Port)
	}
	return netip.AddrPort{}, ErrNoAddress
}

func addrPort(ip net.IP, port int) (netip.AddrPort, error) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.AddrPort{}, ErrNoAddress
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}

// Probe sends one Binding request from pc to server and waits for the answer (retrying every
// 500 ms until ctx ends). pc must not be read by anyone else meanwhile.
func Probe(ctx context.Context, pc net.PacketConn, server net.Addr) (netip.AddrPort, error) {
	tx, req := Request()
	buf := make([]byte, 1500)
	for {
		if _, err := pc.WriteTo(req, server); err != nil {
			return netip.AddrPort{}, err
		}
		deadline := time.Now().Add(500 * time.Millisecond)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		_ = pc.SetReadDeadline(deadline)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return netip.AddrPort{}, err
			}
			if !Is(buf[:n]) {
				continue
			}
			if ap, err := ParseResponse(buf[:n], tx); err == nil {
				_ = pc.SetReadDeadline(time.Time{})
				return ap, nil
			}
		}
		if err := ctx.Err(); err != nil {
			_ = pc.SetReadDeadline(time.Time{})
			return netip.AddrPort{}, err
		}
	}
}

// Response builds the Binding success response to req for a request seen from src.
func Response(req []byte, src netip.AddrPort) ([]byte, error) {
	m := &stun.Message{Raw: append([]byte(nil), req...)}
	if err := m.Decode(); err != nil {
		return nil, err
	}
	if m.Type != stun.BindingRequest {
		return nil, fmt.Errorf("stun: %v is not a binding request", m.Type)
	}
	ip := src.Addr().Unmap().AsSlice()
	port := int(src.Port())
	resp, err := stun.Build(
		stun.NewTransactionIDSetter(m.TransactionID),
		stun.BindingSuccess,
		&stun.XORMappedAddress{IP: ip, Port: port},
		&stun.MappedAddress{IP: ip, Port: port},
		stun.NewSoftware("meshkafka relay"),
		stun.Fingerprint,
	)
	if err != nil {
		return nil, err
	}
	return resp.Raw, nil
}

// Server answers STUN Binding requests on a PacketConn. Anything else is ignored.
type Server struct {
	conn net.PacketConn
	log  *slog.Logger

	mu     sync.Mutex
	closed bool
	done   chan struct{}
}

// NewServer returns a server for conn; call Serve to run it.
func NewServer(conn net.PacketConn, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{conn: conn, log: log, done: make(chan struct{})}
}

// Serve answers requests until Close. It returns nil after Close.
func (s *Server) Serve() error {
	defer close(s.done)
	buf := make([]byte, 2048)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok || !Is(buf[:n]) {
			continue
		}
		resp, err := Response(buf[:n], ua.AddrPort())
		if err != nil {
			s.log.Debug("stun: ignoring packet", "from", from, "err", err)
			continue
		}
		if _, err := s.conn.WriteTo(resp, from); err != nil {
			s.log.Debug("stun: reply failed", "to", from, "err", err)
		}
	}
}

// Close stops Serve (closing the conn) and waits for it if it was started.
func (s *Server) Close() error {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if already {
		return nil
	}
	return s.conn.Close()
}

// Done is closed when Serve has returned.
func (s *Server) Done() <-chan struct{} { return s.done }
