package meshtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"time"

	"github.com/meshkafka/meshkafka/mesh/key"
)

// ServerName is the SNI iroh 0.28.1 dialers send (endpoint.rs connect_quinn).
const ServerName = "localhost"

// curves mirrors rustls' ring provider key-exchange groups.
var curves = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}

// verifyChain returns a VerifyPeerCertificate callback that reads the
// clock from cfg.Time (time.Now if nil). If want is non-nil, the proven
// node id must equal *want.
func verifyChain(cfg *tls.Config, want *key.PublicKey) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) != 1 {
			return ErrChain
		}
		t := time.Now()
		if cfg.Time != nil {
			t = cfg.Time()
		}
		got, err := VerifyCertificate(raw[0], t)
		if err != nil {
			return err
		}
		if want != nil && got != *want {
			return ErrWrongPeer
		}
		return nil
	}
}

// ClientConfig returns the TLS configuration for dialing node remote on
// one ALPN, presenting cert (from GenerateCertificate). The handshake
// fails unless the server proves remote's key.
func ClientConfig(cert tls.Certificate, remote key.PublicKey, alpn string) *tls.Config {
	want := remote
	c := base(cert)
	c.ServerName = ServerName
	c.NextProtos = []string{alpn}
	c.InsecureSkipVerify = true // chain checks are VerifyPeerCertificate's job; see package doc
	c.VerifyPeerCertificate = verifyChain(c, &want)
	return c
}

// ServerConfig returns the TLS configuration for accepting connections,
// presenting cert and requiring a client certificate. alpns is called for
// every handshake and returns the ALPNs currently served. Time and
// KeyLogWriter set on the returned config apply to every handshake.
func ServerConfig(cert tls.Certificate, alpns func() []string) *tls.Config {
	c := base(cert)
	c.ClientAuth = tls.RequireAnyClientCert
	c.VerifyPeerCertificate = verifyChain(c, nil)
	c.NextProtos = alpns()
	c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cc := base(cert)
		cc.ClientAuth = tls.RequireAnyClientCert
		cc.VerifyPeerCertificate = c.VerifyPeerCertificate
		cc.Time = c.Time
		cc.KeyLogWriter = c.KeyLogWriter
		cc.NextProtos = alpns()
		return cc, nil
	}
	return c
}

func base(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		MaxVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{cert},
		CurvePreferences:       curves,
		SessionTicketsDisabled: true,
	}
}

// PeerID returns the node id proven in a completed handshake.
func PeerID(cs tls.ConnectionState) (key.PublicKey, error) {
	if len(cs.PeerCertificates) != 1 {
		return key.PublicKey{}, errors.New("meshtls: no peer certificate in connection state")
	}
	_, pk, _, err := ParseCertificate(cs.PeerCertificates[0].Raw)
	return pk, err
}
