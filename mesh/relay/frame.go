package relay

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Wire constants of relay protocol version 3 (iroh-net 0.28.1 relay/codec.rs, relay/http.rs).
const (
	// ProtocolVersion is the only version a 0.28 client sends and a 0.28 server accepts.
	ProtocolVersion = 3
	// MaxPacketSize is the largest payload of a SendPacket or RecvPacket frame.
	MaxPacketSize = 64 * 1024
	// MaxFrameSize is the largest frame body.
	MaxFrameSize = 1024 * 1024
	// FrameHeaderLen is the size of the type byte plus the u32 length.
	FrameHeaderLen = 5
	// KeyLen is the size of an Ed25519 public key (a node id).
	KeyLen = 32
	// UpgradeProtocol is the value of the Upgrade header of the HTTP upgrade.
	UpgradeProtocol = "iroh derp http"
	// HTTPPath is the path a client upgrades on; LegacyHTTPPath is also accepted by servers.
	HTTPPath       = "/relay"
	LegacyHTTPPath = "/derp"
	// ProbePath answers a plain GET with 200, for latency probes.
	ProbePath = "/relay/probe"
	// UnpacedHeader is a request header of the HTTP upgrade (value "1", our extension) by
	// which a client tells the server it takes every frame as it arrives and answers Pings
	// from its read loop, so the server need not pace it with the Ping/Pong window it keeps
	// for iroh 0.28.1's client (relayserver.Window). Client, dialled by relayhttp, sends it;
	// iroh's server ignores it.
	UnpacedHeader = "Meshkafka-Relay-Unpaced"
)

// Magic opens every ClientInfo body: "RELAY🔑".
const Magic = "RELAY\U0001F511"

// NodeKey is a node's Ed25519 public key, its node id, in raw form.
type NodeKey = [KeyLen]byte

// FrameType is the first byte of a frame.
type FrameType byte

// Frame types of protocol version 3. Types 9–11 (meshing) and 1, 3 (server key and info) were
// removed in version 3 and are decode errors.
const (
	FrameClientInfo    FrameType = 2
	FrameSendPacket    FrameType = 4
	FrameRecvPacket    FrameType = 5
	FrameKeepAlive     FrameType = 6
	FrameNotePreferred FrameType = 7
	FramePeerGone      FrameType = 8
	FramePing          FrameType = 12
	FramePong          FrameType = 13
	FrameHealth        FrameType = 14
	FrameRestarting    FrameType = 15
)

func (t FrameType) String() string {
	switch t {
	case FrameClientInfo:
		return "ClientInfo"
	case FrameSendPacket:
		return "SendPacket"
	case FrameRecvPacket:
		return "RecvPacket"
	case FrameKeepAlive:
		return "KeepAlive"
	case FrameNotePreferred:
		return "NotePreferred"
	case FramePeerGone:
		return "PeerGone"
	case FramePing:
		return "Ping"
	case FramePong:
		return "Pong"
	case FrameHealth:
		return "Health"
	case FrameRestarting:
		return "Restarting"
	}
	return fmt.Sprintf("FrameType(%d)", byte(t))
}

// Frame is one decoded frame. Which fields are meaningful depends on Type:
//
//	ClientInfo     Key (client), Signature, Data (signed message)
//	SendPacket     Key (destination), Data (payload)
//	RecvPacket     Key (source), Data (payload)
//	KeepAlive      -
//	NotePreferred  Preferred
//	PeerGone       Key (the peer)
//	Ping, Pong     PingData
//	Health         Data (problem text)
//	Restarting     ReconnectIn, TryFor (milliseconds)
//
// A decoded Frame's Data aliases the buffer it was decoded from.
type Frame struct {
	Type        FrameType
	Key         NodeKey
	Data        []byte
	Signature   [ed25519.SignatureSize]byte
	PingData    [8]byte
	Preferred   bool
	ReconnectIn uint32
	TryFor      uint32
}

// Errors returned by the codec. Decode errors wrap ErrMalformed.
var (
	ErrMalformed     = errors.New("relay: malformed frame")
	ErrFrameTooLarge = errors.New("relay: frame too large")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// BodyLen returns the encoded body length of f (without the 5-byte header).
func (f *Frame) BodyLen() int {
	switch f.Type {
	case FrameClientInfo:
		return len(Magic) + KeyLen + ed25519.SignatureSize + len(f.Data)
	case FrameSendPacket, FrameRecvPacket:
		return KeyLen + len(f.Data)
	case FrameKeepAlive:
		return 0
	case FrameNotePreferred:
		return 1
	case FramePeerGone:
		return KeyLen
	case FramePing, FramePong:
		return 8
	case FrameHealth:
		return len(f.Data)
	case FrameRestarting:
		return 8
	}
	return 0
}

// AppendTo appends the complete encoding of f (header and body) to b. It refuses unknown frame
// types and oversized frames or packets.
func (f *Frame) AppendTo(b []byte) ([]byte, error) {
	n := f.BodyLen()
	switch f.Type {
	case FrameClientInfo, FrameKeepAlive, FrameNotePreferred, FramePeerGone, FramePing, FramePong,
		FrameHealth, FrameRestarting:
	case FrameSendPacket, FrameRecvPacket:
		if len(f.Data) > MaxPacketSize {
			return b, fmt.Errorf("%w: packet of %d bytes (max %d)", ErrFrameTooLarge, len(f.Data), MaxPacketSize)
		}
	default:
		return b, fmt.Errorf("relay: cannot encode unknown frame type %d", byte(f.Type))
	}
	if n > MaxFrameSize {
		return b, fmt.Errorf("%w: %d bytes (max %d)", ErrFrameTooLarge, n, MaxFrameSize)
	}
	b = append(b, byte(f.Type))
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	switch f.Type {
	case FrameClientInfo:
		b = append(b, Magic...)
		b = append(b, f.Key[:]...)
		b = append(b, f.Signature[:]...)
		b = append(b, f.Data...)
	case FrameSendPacket, FrameRecvPacket:
		b = append(b, f.Key[:]...)
		b = append(b, f.Data...)
	case FrameNotePreferred:
		if f.Preferred {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	case FramePeerGone:
		b = append(b, f.Key[:]...)
	case FramePing, FramePong:
		b = append(b, f.PingData[:]...)
	case FrameHealth:
		b = append(b, f.Data...)
	case FrameRestarting:
		b = binary.BigEndian.AppendUint32(b, f.ReconnectIn)
		b = binary.BigEndian.AppendUint32(b, f.TryFor)
	}
	return b, nil
}

// DecodeFrame parses the body of a frame of type t with the rules of iroh 0.28: unknown types,
// wrong fixed lengths, a bad ClientInfo magic and oversized packets are errors. The returned
// Frame's Data aliases body.
func DecodeFrame(t FrameType, body []byte) (Frame, error) {
	f := Frame{Type: t}
	if len(body) > MaxFrameSize {
		return f, fmt.Errorf("%w: %d bytes (max %d)", ErrFrameTooLarge, len(body), MaxFrameSize)
	}
	switch t {
	case FrameClientInfo:
		if len(body) < len(Magic)+KeyLen+ed25519.SignatureSize {
			return f, malformed("client info of %d bytes", len(body))
		}
		if !bytes.Equal(body[:len(Magic)], []byte(Magic)) {
			return f, malformed("bad client info magic")
		}
		p := body[len(Magic):]
		copy(f.Key[:], p[:KeyLen])
		copy(f.Signature[:], p[KeyLen:KeyLen+ed25519.SignatureSize])
		f.Data = p[KeyLen+ed25519.SignatureSize:]
	case FrameSendPacket, FrameRecvPacket:
		if len(body) < KeyLen {
			return f, malformed("%v of %d bytes", t, len(body))
		}
		if len(body)-KeyLen > MaxPacketSize {
			return f, fmt.Errorf("%w: packet of %d bytes (max %d)", ErrFrameTooLarge, len(body)-KeyLen, MaxPacketSize)
		}
		copy(f.Key[:], body[:KeyLen])
		f.Data = body[KeyLen:]
	case FrameKeepAlive:
		if len(body) != 0 {
			return f, malformed("keep alive of %d bytes", len(body))
		}
	case FrameNotePreferred:
		if len(body) != 1 || body[0] > 1 {
			return f, malformed("bad note preferred body %x", body)
		}
		f.Preferred = body[0] == 1
	case FramePeerGone:
		if len(body) != KeyLen {
			return f, malformed("peer gone of %d bytes", len(body))
		}
		copy(f.Key[:], body)
	case FramePing, FramePong:
		if len(body) != 8 {
			return f, malformed("%v of %d bytes", t, len(body))
		}
		copy(f.PingData[:], body)
	case FrameHealth:
		f.Data = body
	case FrameRestarting:
		if len(body) != 8 {
			return f, malformed("restarting of %d bytes", len(body))
		}
		f.ReconnectIn = binary.BigEndian.Uint32(body[:4])
		f.TryFor = binary.BigEndian.Uint32(body[4:])
	default:
		return f, malformed("unknown frame type %d", byte(t))
	}
	return f, nil
}

// ReadFrame reads one frame from r. The body is read into buf (grown when needed; pass the
// returned buffer back in to reuse it), and the returned Frame's Data aliases that buffer, so
// it is valid only until the next call with the same buffer. A header announcing more than
// MaxFrameSize is refused before anything is allocated.
func ReadFrame(r io.Reader, buf []byte) (Frame, []byte, error) {
	// The header is read into buf too: a local array would escape through the io.Reader.
	if cap(buf) < FrameHeaderLen {
		buf = make([]byte, FrameHeaderLen, 512)
	}
	hdr := buf[:FrameHeaderLen]
	if _, err := io.ReadFull(r, hdr); err != nil {
		return Frame{}, buf, err
	}
	t := FrameType(hdr[0])
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxFrameSize {
		return Frame{}, buf, fmt.Errorf("%w: header announces %d bytes (max %d)", ErrFrameTooLarge, n, MaxFrameSize)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	body := buf[:n]
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, buf, err
	}
	f, err := DecodeFrame(t, body)
	return f, buf, err
}

// ClientInfoMessage is the postcard encoding of ClientInfo{version: ProtocolVersion}: the
// version as an unsigned LEB128 varint, which is the single byte 0x03.
func ClientInfoMessage() []byte {
	return binary.AppendUvarint(nil, ProtocolVersion)
}

// NewClientInfo builds the ClientInfo frame signed by priv.
func NewClientInfo(priv ed25519.PrivateKey) Frame {
	msg := ClientInfoMessage()
	f := Frame{Type: FrameClientInfo, Data: msg}
	copy(f.Key[:], priv.Public().(ed25519.PublicKey))
	copy(f.Signature[:], ed25519.Sign(priv, msg))
	return f
}

// Errors of ClientInfo verification.
var (
	ErrBadSignature = errors.New("relay: client info signature does not verify")
	ErrBadVersion   = errors.New("relay: unsupported relay protocol version")
)

// VerifyClientInfo checks a ClientInfo frame: the signature over the message under the claimed
// key, then the postcard-encoded version (trailing bytes are ignored, as postcard does). It
// returns the protocol version on success.
func VerifyClientInfo(f *Frame) (uint64, error) {
	if f.Type != FrameClientInfo {
		return 0, fmt.Errorf("relay: expected ClientInfo, got %v", f.Type)
	}
	if !ed25519.Verify(ed25519.PublicKey(f.Key[:]), f.Data, f.Signature[:]) {
		return 0, ErrBadSignature
	}
	v, n := binary.Uvarint(f.Data)
	if n <= 0 {
		return 0, malformed("client info message %x is not a varint", f.Data)
	}
	if v != ProtocolVersion {
		return v, fmt.Errorf("%w: %d (want %d)", ErrBadVersion, v, ProtocolVersion)
	}
	return v, nil
}
