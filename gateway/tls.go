package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// TLSOptions configure the TLS of SSL and SASL_SSL listeners.
type TLSOptions struct {
	// CertFile and KeyFile are the PEM server certificate (chain) and key. Both files are
	// re-read, without a restart, when either changes (see CertReloader).
	CertFile, KeyFile string
	// ClientCAFile, if set, is a PEM bundle of CAs client certificates are verified against.
	ClientCAFile string
	// ClientAuth is Kafka's ssl.client.auth: "none" (default), "requested" (a client
	// certificate is verified if sent) or "required" (mTLS).
	ClientAuth string
	// Logger receives reload failures. Nil: discard.
	Logger *slog.Logger
}

// NewTLSConfig builds the server TLS config of opts: TLS 1.2 or newer, the certificate from
// a CertReloader, client certificates as ClientAuth asks, full-size records from the first
// byte (DynamicRecordSizingDisabled).
func NewTLSConfig(opts TLSOptions) (*tls.Config, *CertReloader, error) {
	if opts.CertFile == "" || opts.KeyFile == "" {
		return nil, nil, errors.New("gateway: TLS needs a certificate file and a key file")
	}
	r, err := NewCertReloader(opts.CertFile, opts.KeyFile, opts.Logger)
	if err != nil {
		return nil, nil, err
	}
	// Dynamic record sizing starts each connection with ~1 KiB records for the first 128 KiB
	// written, so that a browser can render the first bytes early; a Kafka client uses an
	// answer only once all of it arrived, so full 16 KiB records from the start cost less.
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate, DynamicRecordSizingDisabled: true}
	switch opts.ClientAuth {
	case "", "none":
		cfg.ClientAuth = tls.NoClientCert
	case "requested":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case "required":
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, nil, fmt.Errorf("gateway: ssl client auth %q: want none, requested or required", opts.ClientAuth)
	}
	if opts.ClientCAFile != "" {
		pem, err := os.ReadFile(opts.ClientCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("gateway: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("gateway: client CA %s: no PEM certificates", opts.ClientCAFile)
		}
		cfg.ClientCAs = pool
	} else if cfg.ClientAuth != tls.NoClientCert {
		return nil, nil, errors.New("gateway: ssl client auth needs a client CA file")
	}
	return cfg, r, nil
}

// CertReloader serves a certificate and key from files and re-reads them when they change:
// every handshake stats both files, and a changed size, modification time or file identity
// loads them again. A pair that does not load (a half-written rotation, a key that does not
// match) is logged and the previous certificate stays in use until the files change again.
type CertReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu       sync.Mutex
	cert     *tls.Certificate // guarded by mu
	certSt   fileStamp        // guarded by mu
	keySt    fileStamp        // guarded by mu
	failedAt [2]fileStamp     // guarded by mu: the stamps of the last pair that failed to load
}

type fileStamp struct {
	size int64
	mod  time.Time
	fi   os.FileInfo
}

func (a fileStamp) same(b fileStamp) bool {
	return a.size == b.size && a.mod.Equal(b.mod) && a.fi != nil && b.fi != nil && os.SameFile(a.fi, b.fi)
}

func stamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{size: fi.Size(), mod: fi.ModTime(), fi: fi}, nil
}

// NewCertReloader loads the pair once; an error here is a start-up error.
func NewCertReloader(certFile, keyFile string, log *slog.Logger) (*CertReloader, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &CertReloader{certFile: certFile, keyFile: keyFile, log: log}
	cs, ks, cert, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cert, r.certSt, r.keySt = cert, cs, ks
	return r, nil
}

func (r *CertReloader) load() (cs, ks fileStamp, cert *tls.Certificate, err error) {
	if cs, err = stamp(r.certFile); err != nil {
		return cs, ks, nil, fmt.Errorf("gateway: TLS certificate: %w", err)
	}
	if ks, err = stamp(r.keyFile); err != nil {
		return cs, ks, nil, fmt.Errorf("gateway: TLS key: %w", err)
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return cs, ks, nil, fmt.Errorf("gateway: TLS certificate %s / key %s: %w", r.certFile, r.keyFile, err)
	}
	return cs, ks, &c, nil
}

// GetCertificate is a tls.Config.GetCertificate: the current certificate, reloaded first if
// the files changed.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cs, err1 := stamp(r.certFile)
	ks, err2 := stamp(r.keyFile)
	if err1 != nil || err2 != nil || (cs.same(r.certSt) && ks.same(r.keySt)) {
		return r.cert, nil // unchanged, or mid-rotation: keep serving what we have
	}
	if cs.same(r.failedAt[0]) && ks.same(r.failedAt[1]) {
		return r.cert, nil // this pair failed already; wait for the next change
	}
	cs, ks, cert, err := r.load()
	if err != nil {
		r.failedAt = [2]fileStamp{cs, ks}
		r.log.Warn("gateway: TLS certificate changed but does not load; still serving the previous one", "err", err)
		return r.cert, nil
	}
	r.cert, r.certSt, r.keySt = cert, cs, ks
	r.log.Info("gateway: TLS certificate reloaded", "cert", r.certFile)
	return r.cert, nil
}
