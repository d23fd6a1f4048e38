package raftmesh

import (
	"encoding/binary"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/meshkafka/meshkafka/broker/internal/meshlink"
)

// Frame errors. Both are wrapped with detail.
var (
	ErrFrameTooLarge = meshlink.ErrFrameTooLarge
	ErrMalformed     = meshlink.ErrMalformed
)

// codec frames raft messages for meshlink: message = uvarint length + protobuf.
type codec struct{}

func (codec) To(m *raftpb.Message) uint64                                { return m.GetTo() }
func (codec) From(m *raftpb.Message) uint64                              { return m.GetFrom() }
func (codec) IsSnapshot(m *raftpb.Message) bool                          { return m.GetType() == raftpb.MsgSnap }
func (codec) Kind(m *raftpb.Message) string                              { return m.GetType().String() }
func (codec) NewEncoder() meshlink.Encoder[*raftpb.Message]              { return new(encoder) }
func (codec) DecodeBatch(b []byte, fn func(*raftpb.Message) error) error { return DecodeBatch(b, fn) }

// encoder frames every message alone; it remembers the protobuf size Size computed so
// Append does not compute it again.
type encoder struct {
	last *raftpb.Message
	size int
}

func (e *encoder) Reset() {}

func (e *encoder) Size(m *raftpb.Message) int {
	e.last, e.size = m, proto.Size(m)
	return meshlink.UvarintLen(uint64(e.size)) + e.size
}

func (e *encoder) Append(buf []byte, m *raftpb.Message) ([]byte, error) {
	if e.last != m {
		e.Size(m)
	}
	e.last = nil
	buf = binary.AppendUvarint(buf, uint64(e.size))
	return proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(buf, m)
}

// AppendFrame appends one frame carrying msgs to buf. It is the encoder the transport uses;
// exported for tests and tools.
func AppendFrame(buf []byte, msgs []*raftpb.Message) ([]byte, error) {
	return meshlink.AppendFrame(buf, new(encoder), msgs)
}

// ReadFrame reads one frame from r and returns its batch (the bytes after the length
// prefix), reusing buf when it is large enough. A frame longer than max is ErrFrameTooLarge
// (nothing more is read); an empty frame is ErrMalformed; io.EOF before the first byte is
// io.EOF, a frame cut short io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, max int, buf []byte) ([]byte, error) {
	return meshlink.ReadFrame(r, max, buf)
}

// DecodeBatch decodes the messages of a batch in order, calling fn for each; it stops at
// fn's first error and returns it. A batch must hold at least one message; a bad length or
// protobuf encoding is ErrMalformed.
func DecodeBatch(b []byte, fn func(*raftpb.Message) error) error {
	if len(b) == 0 {
		return fmt.Errorf("raftmesh: %w: empty batch", ErrMalformed)
	}
	for i := 0; len(b) > 0; i++ {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return fmt.Errorf("raftmesh: %w: message %d: bad length", ErrMalformed, i)
		}
		m := new(raftpb.Message)
		if err := proto.Unmarshal(b[w:w+int(n)], m); err != nil {
			return fmt.Errorf("raftmesh: %w: message %d: %v", ErrMalformed, i, err)
		}
		b = b[w+int(n):]
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}
