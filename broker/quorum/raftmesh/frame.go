package raftmesh

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// frameHeader is the size of a frame's length prefix.
const frameHeader = 4

// Frame errors. Both are wrapped with detail.
var (
	ErrFrameTooLarge = errors.New("raftmesh: frame too large")
	ErrMalformed     = errors.New("raftmesh: malformed frame")
)

// appendMessage appends m to a frame being built in buf (which starts with the 4-byte
// header): its length as a uvarint, then its protobuf encoding. size is proto.Size(m),
// computed just before (its cached sizes are reused).
func appendMessage(buf []byte, m *raftpb.Message, size int) ([]byte, error) {
	buf = binary.AppendUvarint(buf, uint64(size))
	return proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(buf, m)
}

// batchSize is the number of bytes a message of protobuf size size takes in a batch.
func batchSize(size int) int {
	var tmp [binary.MaxVarintLen64]byte
	return binary.PutUvarint(tmp[:], uint64(size)) + size
}

// sealFrame writes the batch length into the header of a frame built by appendMessage.
func sealFrame(buf []byte) []byte {
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-frameHeader))
	return buf
}

// AppendFrame appends one frame carrying msgs to buf. It is the encoder the transport uses;
// exported for tests and tools.
func AppendFrame(buf []byte, msgs []*raftpb.Message) ([]byte, error) {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	for _, m := range msgs {
		var err error
		if buf, err = appendMessage(buf, m, proto.Size(m)); err != nil {
			return buf[:start], err
		}
	}
	binary.BigEndian.PutUint32(buf[start:], uint32(len(buf)-start-frameHeader))
	return buf, nil
}

// chunk is how much ReadFrame reads at a time into a frame larger than its buffer, so a length
// prefix alone never makes it allocate more than arrived.
const chunk = 1 << 20

// ReadFrame reads one frame from r and returns its batch (the bytes after the length
// prefix), reusing buf when it is large enough. A frame longer than max is ErrFrameTooLarge
// (nothing more is read); an empty frame is ErrMalformed; io.EOF before the first byte is
// io.EOF, a frame cut short io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, max int, buf []byte) ([]byte, error) {
	var hdr [frameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	if int(n) <= cap(buf) || n <= chunk {
		if int(n) > cap(buf) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, noEOF(err)
		}
		return buf, nil
	}
	// Large (a snapshot): grow as the bytes arrive.
	var bb bytes.Buffer
	got, err := bb.ReadFrom(io.LimitReader(r, int64(n)))
	if err != nil {
		return nil, err
	}
	if got != int64(n) {
		return nil, io.ErrUnexpectedEOF
	}
	return bb.Bytes(), nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// DecodeBatch decodes the messages of a batch in order, calling fn for each; it stops at
// fn's first error and returns it. A batch must hold at least one message; a bad length or
// protobuf encoding is ErrMalformed.
func DecodeBatch(b []byte, fn func(*raftpb.Message) error) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: empty batch", ErrMalformed)
	}
	for i := 0; len(b) > 0; i++ {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return fmt.Errorf("%w: message %d: bad length", ErrMalformed, i)
		}
		m := new(raftpb.Message)
		if err := proto.Unmarshal(b[w:w+int(n)], m); err != nil {
			return fmt.Errorf("%w: message %d: %v", ErrMalformed, i, err)
		}
		b = b[w+int(n):]
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}
