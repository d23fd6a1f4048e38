package relay

import (
	"bufio"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// WriteFrame encodes f into buf (reused; the grown buffer is returned) and writes it to w in
// one Write call.
func WriteFrame(w io.Writer, f *Frame, buf []byte) ([]byte, error) {
	b, err := f.AppendTo(buf[:0])
	if err != nil {
		return buf, err
	}
	_, err = w.Write(b)
	return b, err
}

// DefaultWriteTimeout bounds each frame write of a Client.
const DefaultWriteTimeout = 5 * time.Second

// Client is the low-level relay client over an already upgraded connection (see
// relayhttp.Dial for the HTTP upgrade). NewClient sends the signed ClientInfo; after that
// any number of goroutines may send, and exactly one goroutine calls Recv.
type Client struct {
	// Static after construction.
	conn         net.Conn
	self         NodeKey
	writeTimeout time.Duration

	// Owned by the Recv caller.
	br   *bufio.Reader
	rbuf []byte

	// wmu guards the write side.
	wmu  sync.Mutex
	bw   *bufio.Writer
	wbuf []byte

	closeOnce sync.Once
	closeErr  error
}

// NewClient takes over conn (and br, the reader that consumed the HTTP response, which may
// hold frames already; nil means a fresh reader) and sends the ClientInfo frame signed by
// priv. On error conn is left open for the caller to close.
func NewClient(priv ed25519.PrivateKey, conn net.Conn, br *bufio.Reader) (*Client, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("relay: bad private key")
	}
	if br == nil {
		br = bufio.NewReaderSize(conn, 64<<10)
	}
	c := &Client{
		conn:         conn,
		writeTimeout: DefaultWriteTimeout,
		br:           br,
		bw:           bufio.NewWriterSize(conn, 64<<10),
	}
	copy(c.self[:], priv.Public().(ed25519.PublicKey))
	ci := NewClientInfo(priv)
	if err := c.write(&ci); err != nil {
		return nil, fmt.Errorf("relay: send client info: %w", err)
	}
	return c, nil
}

// PublicKey returns the key the client authenticated with.
func (c *Client) PublicKey() NodeKey { return c.self }

// LocalAddr and RemoteAddr return the underlying connection's addresses.
func (c *Client) LocalAddr() net.Addr  { return c.conn.LocalAddr() }
func (c *Client) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

func (c *Client) write(f *Frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	if c.writeTimeout > 0 {
		_ = c.conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	if c.wbuf, err = f.AppendTo(c.wbuf[:0]); err != nil {
		return err
	}
	if _, err = c.bw.Write(c.wbuf); err != nil {
		return err
	}
	return c.bw.Flush()
}

// Send sends payload to the node dst through the relay. The payload is opaque to the relay;
// iroh nodes expect it to be a batch built with AppendDatagram.
func (c *Client) Send(dst NodeKey, payload []byte) error {
	return c.write(&Frame{Type: FrameSendPacket, Key: dst, Data: payload})
}

// SendDatagram sends one datagram to dst, length-prefixed as iroh's magicsock expects.
func (c *Client) SendDatagram(dst NodeKey, datagram []byte) error {
	if len(datagram) > MaxDatagramsPayload-2 {
		return fmt.Errorf("%w: datagram of %d bytes", ErrFrameTooLarge, len(datagram))
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.writeTimeout > 0 {
		_ = c.conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	// Build header, key and prefix in place to avoid copying the datagram twice.
	b := c.wbuf[:0]
	b = append(b, byte(FrameSendPacket))
	n := KeyLen + 2 + len(datagram)
	b = append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	b = append(b, dst[:]...)
	b = append(b, byte(len(datagram)), byte(len(datagram)>>8))
	c.wbuf = b
	if _, err := c.bw.Write(b); err != nil {
		return err
	}
	if _, err := c.bw.Write(datagram); err != nil {
		return err
	}
	return c.bw.Flush()
}

// NotePreferred tells the server whether it is this client's home relay.
func (c *Client) NotePreferred(preferred bool) error {
	return c.write(&Frame{Type: FrameNotePreferred, Preferred: preferred})
}

// SendPing sends a Ping; the server answers with a Pong carrying the same data.
func (c *Client) SendPing(data [8]byte) error {
	return c.write(&Frame{Type: FramePing, PingData: data})
}

// SendPong answers a Ping.
func (c *Client) SendPong(data [8]byte) error {
	return c.write(&Frame{Type: FramePong, PingData: data})
}

// Recv reads the next frame. A Ping from the server is answered with a Pong before it is
// returned. The Frame's Data is valid only until the next call to Recv. Only server-to-client
// frame types are accepted; anything else is an error, as in iroh 0.28.
func (c *Client) Recv() (Frame, error) {
	var (
		f   Frame
		err error
	)
	f, c.rbuf, err = ReadFrame(c.br, c.rbuf)
	if err != nil {
		return f, err
	}
	switch f.Type {
	case FrameRecvPacket, FrameKeepAlive, FramePeerGone, FramePong, FrameHealth, FrameRestarting:
	case FramePing:
		if err := c.SendPong(f.PingData); err != nil {
			return f, fmt.Errorf("relay: answer ping: %w", err)
		}
	default:
		return f, malformed("unexpected %v frame from server", f.Type)
	}
	return f, nil
}

// SetReadDeadline sets the deadline for Recv.
func (c *Client) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// Close closes the connection; a blocked Recv returns an error. Idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.conn.Close() })
	return c.closeErr
}
