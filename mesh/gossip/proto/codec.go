package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"filippo.io/edwards25519"

	"github.com/meshkafka/meshkafka/internal/postcard"
)

// DefaultMaxMessageSize is iroh-gossip's default frame-body limit. A sender
// refuses bodies of len >= max (so 4095 is the largest sent); a receiver
// rejects len > max (4096 is the largest accepted).
const DefaultMaxMessageSize = 4096

// MinMaxMessageSize is the smallest limit iroh accepts in its config.
const MinMaxMessageSize = 512

// FrameOverhead is the size of a frame body without the message: the topic
// and the outer topic::Message tag.
const FrameOverhead = 33

// Codec errors. Every decode error is fatal for the connection it came from,
// as in Rust (postcard::from_bytes fails and the connection loop ends). The
// postcard-level ones are the shared codec's (internal/postcard).
var (
	ErrShort       = postcard.ErrShort
	ErrBadVarint   = postcard.ErrBadVarint
	ErrBadTag      = errors.New("gossip: unknown enum tag")
	ErrBadBool     = postcard.ErrBadBool
	ErrBadOption   = postcard.ErrBadOption
	ErrBadKey      = errors.New("gossip: peer key is not an Ed25519 point")
	ErrTooLarge    = errors.New("gossip: frame exceeds max message size")
	ErrUnsupported = errors.New("gossip: message type cannot be encoded for this peer type")
)

// ---- encoding ----

func appendVarint(b []byte, v uint64) []byte { return postcard.AppendUvarint(b, v) }

func appendBytes(b, p []byte) []byte { return postcard.AppendBytes(b, p) }

func appendBool(b []byte, v bool) []byte { return postcard.AppendBool(b, v) }

func appendOptData(b []byte, d PeerData) []byte {
	if d == nil {
		return append(b, 0)
	}
	return appendBytes(append(b, 1), d)
}

func appendPeerInfo(b []byte, p PeerInfo[Key]) []byte {
	b = append(b, p.ID[:]...)
	return appendOptData(b, p.Data)
}

func appendPeerInfos(b []byte, ps []PeerInfo[Key]) []byte {
	b = appendVarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = appendPeerInfo(b, p)
	}
	return b
}

// AppendMsg appends postcard(topic::Message) for m.
func AppendMsg(b []byte, m Msg) ([]byte, error) {
	switch m := m.(type) {
	case Join:
		b = append(b, 0, 0)
		return appendOptData(b, m.Data), nil
	case ForwardJoin[Key]:
		b = append(b, 0, 1)
		b = appendPeerInfo(b, m.Peer)
		return appendVarint(b, uint64(m.TTL)), nil
	case Shuffle[Key]:
		b = append(b, 0, 2)
		b = append(b, m.Origin[:]...)
		b = appendPeerInfos(b, m.Nodes)
		return appendVarint(b, uint64(m.TTL)), nil
	case ShuffleReply[Key]:
		b = append(b, 0, 3)
		return appendPeerInfos(b, m.Nodes), nil
	case Neighbor:
		b = append(b, 0, 4, byte(m.Priority))
		return appendOptData(b, m.Data), nil
	case Disconnect:
		b = append(b, 0, 5)
		b = appendBool(b, m.Alive)
		return appendBool(b, m.Respond), nil
	case Gossip:
		b = append(b, 1, 0)
		b = append(b, m.ID[:]...)
		b = appendBytes(b, m.Content)
		if m.Scope.Neighbors {
			return append(b, 1), nil
		}
		b = append(b, 0)
		return appendVarint(b, uint64(m.Scope.Round)), nil
	case Prune:
		return append(b, 1, 1), nil
	case Graft:
		b = append(b, 1, 2)
		if m.ID == nil {
			b = append(b, 0)
		} else {
			b = append(b, 1)
			b = append(b, m.ID[:]...)
		}
		return appendVarint(b, uint64(m.Round)), nil
	case IHaves:
		b = append(b, 1, 3)
		b = appendVarint(b, uint64(len(m)))
		for _, ih := range m {
			b = append(b, ih.ID[:]...)
			b = appendVarint(b, uint64(ih.Round))
		}
		return b, nil
	}
	return b, fmt.Errorf("%w: %T", ErrUnsupported, m)
}

// AppendMessage appends postcard(state::Message{topic, m}): a v0 frame body.
func AppendMessage(b []byte, topic TopicID, m Msg) ([]byte, error) {
	return AppendMsg(append(b, topic[:]...), m)
}

// AppendFrame appends a v0 frame: u32 BE length, then the body. It fails with
// ErrTooLarge, appending nothing, when the body is >= max bytes (Rust's
// sender rule).
func AppendFrame(b []byte, topic TopicID, m Msg, max int) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b, err := AppendMessage(b, topic, m)
	if err != nil {
		return b[:start], err
	}
	n := len(b) - start - 4
	if n >= max {
		return b[:start], fmt.Errorf("%w: %d >= %d", ErrTooLarge, n, max)
	}
	binary.BigEndian.PutUint32(b[start:], uint32(n))
	return b, nil
}

// ---- decoding ----

// reader is the shared postcard decoder plus the gossip types' readers.
type reader struct {
	postcard.Decoder
}

func newReader(b []byte) reader { return reader{postcard.NewDecoder(b)} }

// bytes reads a byte string into fresh memory (decoded messages outlive the frame buffer).
func (r *reader) bytes() ([]byte, error) {
	p, err := r.Bytes()
	if err != nil {
		return nil, err
	}
	return append([]byte{}, p...), nil
}

func (r *reader) array32() (a [32]byte, err error) {
	p, err := r.Take(32)
	if err != nil {
		return a, err
	}
	copy(a[:], p)
	return a, nil
}

// ValidKey reports whether k decompresses to an Ed25519 point, the check Rust
// applies when it deserializes a PublicKey.
func ValidKey(k Key) bool {
	_, err := new(edwards25519.Point).SetBytes(k[:])
	return err == nil
}

func (r *reader) key() (Key, error) {
	a, err := r.array32()
	if err != nil {
		return a, err
	}
	if !ValidKey(a) {
		return a, ErrBadKey
	}
	return a, nil
}

func (r *reader) optData() (PeerData, error) {
	some, err := r.Option()
	if err != nil || !some {
		return nil, err
	}
	return r.bytes()
}

func (r *reader) peerInfo() (p PeerInfo[Key], err error) {
	if p.ID, err = r.key(); err != nil {
		return p, err
	}
	p.Data, err = r.optData()
	return p, err
}

func (r *reader) peerInfos() ([]PeerInfo[Key], error) {
	n, err := r.Len() // each element is at least 33 bytes, so n <= r.Remaining() bounds it
	if err != nil {
		return nil, err
	}
	ps := make([]PeerInfo[Key], 0, min(n, r.Remaining()/33))
	for range n {
		p, err := r.peerInfo()
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func (r *reader) msg() (Msg, error) {
	outer, err := r.U32()
	if err != nil {
		return nil, err
	}
	inner, err := r.U32()
	if err != nil {
		return nil, err
	}
	switch outer {
	case 0:
		return r.swarm(inner)
	case 1:
		return r.gossip(inner)
	}
	return nil, ErrBadTag
}

func (r *reader) swarm(tag uint32) (Msg, error) {
	switch tag {
	case 0:
		d, err := r.optData()
		return Join{Data: d}, err
	case 1:
		var m ForwardJoin[Key]
		var err error
		if m.Peer, err = r.peerInfo(); err != nil {
			return nil, err
		}
		m.TTL, err = r.U16()
		return m, err
	case 2:
		var m Shuffle[Key]
		var err error
		if m.Origin, err = r.key(); err != nil {
			return nil, err
		}
		if m.Nodes, err = r.peerInfos(); err != nil {
			return nil, err
		}
		m.TTL, err = r.U16()
		return m, err
	case 3:
		ns, err := r.peerInfos()
		return ShuffleReply[Key]{Nodes: ns}, err
	case 4:
		p, err := r.U32()
		if err != nil {
			return nil, err
		}
		if p > 1 {
			return nil, ErrBadTag
		}
		d, err := r.optData()
		return Neighbor{Priority: Priority(p), Data: d}, err
	case 5:
		var m Disconnect
		var err error
		if m.Alive, err = r.Bool(); err != nil {
			return nil, err
		}
		m.Respond, err = r.Bool()
		return m, err
	}
	return nil, ErrBadTag
}

func (r *reader) gossip(tag uint32) (Msg, error) {
	switch tag {
	case 0:
		var m Gossip
		var err error
		if m.ID, err = r.array32(); err != nil {
			return nil, err
		}
		if m.Content, err = r.bytes(); err != nil {
			return nil, err
		}
		s, err := r.U32()
		if err != nil {
			return nil, err
		}
		switch s {
		case 0:
			rd, err := r.U16()
			m.Scope.Round = Round(rd)
			return m, err
		case 1:
			m.Scope.Neighbors = true
			return m, nil
		}
		return nil, ErrBadTag
	case 1:
		return Prune{}, nil
	case 2:
		var m Graft
		some, err := r.Option()
		if err != nil {
			return nil, err
		}
		if some {
			id, err := r.array32()
			if err != nil {
				return nil, err
			}
			mid := MessageID(id)
			m.ID = &mid
		}
		rd, err := r.U16()
		m.Round = Round(rd)
		return m, err
	case 3:
		n, err := r.Len()
		if err != nil {
			return nil, err
		}
		ihs := make(IHaves, 0, min(n, r.Remaining()/33))
		for range n {
			var ih IHave
			if ih.ID, err = r.array32(); err != nil {
				return nil, err
			}
			rd, err := r.U16()
			if err != nil {
				return nil, err
			}
			ih.Round = Round(rd)
			ihs = append(ihs, ih)
		}
		return ihs, nil
	}
	return nil, ErrBadTag
}

// DecodeMsg parses postcard(topic::Message). Like postcard::from_bytes it
// ignores trailing bytes.
func DecodeMsg(b []byte) (Msg, error) {
	r := newReader(b)
	return r.msg()
}

// DecodeMessage parses a v0 frame body: postcard(state::Message{topic, msg}).
// Trailing bytes are ignored, as Rust does.
func DecodeMessage(b []byte) (TopicID, Msg, error) {
	r := newReader(b)
	t, err := r.array32()
	if err != nil {
		return t, nil, err
	}
	m, err := r.msg()
	return t, m, err
}

// ReadFrame reads one v0 frame from r into buf (grown as needed) and returns
// its body. A clean EOF before the length prefix returns io.EOF; a length
// above max returns ErrTooLarge without reading the body (Rust's receiver
// rule, which ends the connection).
func ReadFrame(r io.Reader, buf []byte, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return nil, ErrShort
		}
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if n > max {
		return nil, fmt.Errorf("%w: %d > %d", ErrTooLarge, n, max)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, ErrShort
		}
		return nil, err
	}
	return buf, nil
}
