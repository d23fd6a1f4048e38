package replmesh

import (
	"encoding/binary"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/meshkafka/meshkafka/broker/internal/meshlink"
	"github.com/meshkafka/meshkafka/broker/replica"
)

// Frame errors. Both are wrapped with detail.
var (
	ErrFrameTooLarge = meshlink.ErrFrameTooLarge
	ErrMalformed     = meshlink.ErrMalformed
)

// runHeader is a run's group id (topic 16 bytes, partition i32 BE) and count (u16 BE).
const (
	runHeader = 16 + 4 + 2
	maxRun    = 1<<16 - 1
)

// codec frames group messages for meshlink (layout in doc.go).
type codec struct{}

func (codec) To(m replica.GroupMessage) uint64       { return m.Msg.GetTo() }
func (codec) From(m replica.GroupMessage) uint64     { return m.Msg.GetFrom() }
func (codec) IsSnapshot(m replica.GroupMessage) bool { return m.Msg.GetType() == raftpb.MsgSnap }
func (codec) Kind(m replica.GroupMessage) string     { return m.Msg.GetType().String() }
func (codec) NewEncoder() meshlink.Encoder[replica.GroupMessage] {
	return new(encoder)
}
func (codec) DecodeBatch(b []byte, fn func(replica.GroupMessage) error) error {
	return DecodeBatch(b, fn)
}

// encoder puts consecutive messages of one group in one run. It remembers the protobuf size
// Size computed so Append does not compute it again.
type encoder struct {
	open    bool // a run is open in the current frame
	group   replica.GroupID
	countAt int // offset of the open run's count
	count   int
	last    *raftpb.Message
	size    int
}

func (e *encoder) Reset() { e.open = false }

func (e *encoder) newRun(g replica.GroupID) bool {
	return !e.open || g != e.group || e.count == maxRun
}

func (e *encoder) Size(m replica.GroupMessage) int {
	e.last, e.size = m.Msg, proto.Size(m.Msg)
	n := meshlink.UvarintLen(uint64(e.size)) + e.size
	if e.newRun(m.Group) {
		n += runHeader
	}
	return n
}

func (e *encoder) Append(buf []byte, m replica.GroupMessage) ([]byte, error) {
	if e.last != m.Msg {
		e.Size(m)
	}
	e.last = nil
	start := len(buf)
	if e.newRun(m.Group) {
		buf = append(buf, m.Group.Topic[:]...)
		buf = binary.BigEndian.AppendUint32(buf, uint32(m.Group.Partition))
		e.open, e.group, e.countAt, e.count = true, m.Group, len(buf), 0
		buf = append(buf, 0, 0)
	}
	buf = binary.AppendUvarint(buf, uint64(e.size))
	buf, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(buf, m.Msg)
	if err != nil {
		if e.countAt >= start {
			e.open = false // the run header just written is dropped with the message
		}
		return buf[:start], err
	}
	e.count++
	binary.BigEndian.PutUint16(buf[e.countAt:], uint16(e.count))
	return buf, nil
}

// AppendFrame appends one frame carrying msgs to buf, as the transport's senders frame them
// (consecutive messages of one group share a run). Exported for tests and tools.
func AppendFrame(buf []byte, msgs []replica.GroupMessage) ([]byte, error) {
	return meshlink.AppendFrame(buf, new(encoder), msgs)
}

// ReadFrame reads one frame from r and returns its batch (see meshlink.ReadFrame).
func ReadFrame(r io.Reader, max int, buf []byte) ([]byte, error) {
	return meshlink.ReadFrame(r, max, buf)
}

// DecodeBatch decodes the group messages of a batch in order, calling fn for each; it stops
// at fn's first error and returns it. A batch holds at least one run, a run at least one
// message; anything that does not decode is ErrMalformed. The messages' entry data and
// context refer into b (no copy): b must stay unchanged while they are in use.
func DecodeBatch(b []byte, fn func(replica.GroupMessage) error) error {
	if len(b) == 0 {
		return fmt.Errorf("replmesh: %w: empty batch", ErrMalformed)
	}
	for r := 0; len(b) > 0; r++ {
		if len(b) < runHeader {
			return fmt.Errorf("replmesh: %w: run %d: header truncated", ErrMalformed, r)
		}
		var g replica.GroupID
		copy(g.Topic[:], b)
		g.Partition = int32(binary.BigEndian.Uint32(b[16:]))
		count := int(binary.BigEndian.Uint16(b[20:]))
		if count == 0 {
			return fmt.Errorf("replmesh: %w: run %d: no messages", ErrMalformed, r)
		}
		b = b[runHeader:]
		for i := range count {
			n, w := binary.Uvarint(b)
			if w <= 0 || n > uint64(len(b)-w) {
				return fmt.Errorf("replmesh: %w: run %d message %d: bad length", ErrMalformed, r, i)
			}
			m, err := decodeMessage(b[w : w+int(n)])
			if err != nil {
				return fmt.Errorf("replmesh: %w: run %d message %d: %v", ErrMalformed, r, i, err)
			}
			b = b[w+int(n):]
			if err := fn(replica.GroupMessage{Group: g, Msg: m}); err != nil {
				return err
			}
		}
	}
	return nil
}
