package interop

// A bare quic-go + crypto/tls peer that builds iroh-style certificates by hand, so that tests can
// present certificates our real endpoint would never make (no extension, a wrong key, a bad
// signature) and record exactly what the Rust node presents. Independent of mesh/meshtls on
// purpose: it is a second reading of the same spec.

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/interop/irohnode"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// libp2p public-key extension as iroh 0.28 uses it (see iroh-net v0.28.1 src/tls/certificate.rs).
var libp2pOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 53594, 1, 1}

const libp2pPrefix = "libp2p-tls-handshake:"

type signedKey struct {
	PublicKey []byte
	Signature []byte
}

type rawCertOpts struct {
	signer      ed25519.PrivateKey // node key that signs the extension
	claim       ed25519.PublicKey  // key written into the extension; nil: signer's public key
	noExtension bool
}

// rawCert makes a self-signed P-256 certificate, iroh style unless the options break it.
func rawCert(t testing.TB, o rawCertOpts) tls.Certificate {
	t.Helper()
	ck, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&ck.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial.Add(serial, big.NewInt(1)),
		NotBefore:    time.Date(1975, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(4096, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	if !o.noExtension {
		claim := o.claim
		if claim == nil {
			claim = o.signer.Public().(ed25519.PublicKey)
		}
		sig := ed25519.Sign(o.signer, append([]byte(libp2pPrefix), spki...))
		val, err := asn1.Marshal(signedKey{PublicKey: claim, Signature: sig})
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: libp2pOID, Critical: true, Value: val}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ck.PublicKey, ck)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: ck}
}

func newEd25519(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// nodeIDText is the iroh 0.28 text form of an Ed25519 public key.
func nodeIDText(t testing.TB, pub ed25519.PublicKey) string {
	t.Helper()
	pk, err := key.PublicKeyFromBytes(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pk.String()
}

// certNodeID checks a presented iroh certificate the way iroh does (self-signature, extension
// signature over prefix||SPKI) and returns the node key it proves.
func certNodeID(der []byte) (ed25519.PublicKey, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		return nil, fmt.Errorf("self-signature: %w", err)
	}
	var found *pkix.Extension
	for i, e := range c.Extensions {
		if e.Id.Equal(libp2pOID) {
			if found != nil {
				return nil, errors.New("extension twice")
			}
			found = &c.Extensions[i]
		}
	}
	if found == nil {
		return nil, errors.New("no libp2p extension")
	}
	var sk signedKey
	if rest, err := asn1.Unmarshal(found.Value, &sk); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("extension value: %v (rest %d)", err, len(rest))
	}
	if len(sk.PublicKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("extension key is %d bytes", len(sk.PublicKey))
	}
	if !ed25519.Verify(sk.PublicKey, append([]byte(libp2pPrefix), c.RawSubjectPublicKeyInfo...), sk.Signature) {
		return nil, errors.New("extension signature does not verify")
	}
	return ed25519.PublicKey(sk.PublicKey), nil
}

// rawPeer is a bare quic-go transport on its own loopback UDP socket.
type rawPeer struct {
	udp *net.UDPConn
	tr  *quic.Transport

	mu    sync.Mutex // guards peer
	peer  [][]byte   // certificates the other side presented in the last handshake
	wg    sync.WaitGroup
	ln    *quic.Listener
	close sync.Once
}

func newRawPeer(t testing.TB) *rawPeer {
	t.Helper()
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{udp: udp, tr: &quic.Transport{Conn: udp}}
	t.Cleanup(p.Close)
	return p
}

func (p *rawPeer) Close() {
	p.close.Do(func() {
		if p.ln != nil {
			p.ln.Close()
		}
		p.wg.Wait()
		p.tr.Close()
		p.udp.Close()
	})
}

func (p *rawPeer) addr() string { return p.udp.LocalAddr().String() }

func (p *rawPeer) record(raw [][]byte, _ [][]*x509.Certificate) error {
	p.mu.Lock()
	p.peer = raw
	p.mu.Unlock()
	return nil
}

func (p *rawPeer) peerCerts() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peer
}

var rawQUICConfig = &quic.Config{HandshakeIdleTimeout: 5 * time.Second, MaxIdleTimeout: 10 * time.Second}

// dial connects to a Rust node as a bare TLS client presenting cert and offering alpn. The Rust
// node is first told our address (under registerAs), since it ignores unknown senders.
func (p *rawPeer) dial(ctx context.Context, t testing.TB, n *irohnode.Node, registerAs string, cert tls.Certificate, alpn string) (*quic.Conn, error) {
	t.Helper()
	if err := n.AddNodeAddr(ctx, irohnode.NodeAddr{NodeID: registerAs, Addresses: []string{p.addr()}}); err != nil {
		t.Fatal(err)
	}
	return p.dialAddr(ctx, t, rustIPv4(t, n), cert, alpn)
}

// dialAddr connects to addr as a bare TLS client presenting cert and offering alpn.
func (p *rawPeer) dialAddr(ctx context.Context, t testing.TB, addr string, cert tls.Certificate, alpn string) (*quic.Conn, error) {
	t.Helper()
	to, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	conf := &tls.Config{
		MinVersion:            tls.VersionTLS13,
		Certificates:          []tls.Certificate{cert},
		InsecureSkipVerify:    true, // chain checks cannot work; certNodeID checks instead
		VerifyPeerCertificate: p.record,
		NextProtos:            []string{alpn},
		ServerName:            "localhost",
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return p.tr.Dial(dctx, to, conf, rawQUICConfig)
}

// listen accepts connections as a bare TLS server presenting cert on alpn; each accepted
// connection is handed to serve (on a goroutine owned by the peer).
func (p *rawPeer) listen(t testing.TB, cert tls.Certificate, alpn string, serve func(*quic.Conn)) {
	t.Helper()
	conf := &tls.Config{
		MinVersion:            tls.VersionTLS13,
		Certificates:          []tls.Certificate{cert},
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: p.record,
		NextProtos:            []string{alpn},
	}
	ln, err := p.tr.Listen(conf, rawQUICConfig)
	if err != nil {
		t.Fatal(err)
	}
	p.ln = ln
	p.wg.Go(func() {
		var inner sync.WaitGroup
		defer inner.Wait()
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			inner.Go(func() {
				defer c.CloseWithError(0, "")
				serve(c)
			})
		}
	})
}

// rustIPv4 returns the Rust node's 127.0.0.1 address.
func rustIPv4(t testing.TB, n *irohnode.Node) string {
	t.Helper()
	for _, a := range n.Addr.Addresses {
		if strings.HasPrefix(a, "127.0.0.1:") {
			return a
		}
	}
	t.Fatalf("Rust node %s has no 127.0.0.1 address: %v", n.ID, n.Addr.Addresses)
	return ""
}

// alertOf returns the TLS alert number carried by a QUIC CRYPTO_ERROR (0x100 + alert) that the
// peer sent, or -1.
func alertOf(err error) int {
	var te *quic.TransportError
	if errors.As(err, &te) && te.Remote && te.ErrorCode >= 0x100 && te.ErrorCode < 0x200 {
		return int(te.ErrorCode - 0x100)
	}
	return -1
}

// echoOnce opens a bi stream, writes msg, finishes and reads the reply to the end.
func echoOnce(ctx context.Context, c *quic.Conn, msg []byte) ([]byte, error) {
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.Write(msg); err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetReadDeadline(dl)
	}
	return io.ReadAll(s)
}
