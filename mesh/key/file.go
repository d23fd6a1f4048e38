package key

import (
	"bytes"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

const opensshHeader = "-----BEGIN OPENSSH PRIVATE KEY-----"

// MarshalOpenSSH encodes k as an unencrypted OpenSSH private key file, the
// format iroh 0.28 keeps node keys in (SecretKey::to_openssh, empty comment).
func (k SecretKey) MarshalOpenSSH() ([]byte, error) {
	blk, err := ssh.MarshalPrivateKey(k.priv, "")
	if err != nil {
		return nil, fmt.Errorf("key: openssh: %w", err)
	}
	return pem.EncodeToMemory(blk), nil
}

// ParseSecretKeyFile reads a secret key in any form LoadOrCreate accepts:
// an unencrypted OpenSSH Ed25519 private key (iroh's key file format), or
// one line of base32 or hex.
func ParseSecretKeyFile(b []byte) (SecretKey, error) {
	t := bytes.TrimSpace(b)
	if bytes.HasPrefix(t, []byte(opensshHeader)) {
		raw, err := ssh.ParseRawPrivateKey(t)
		if err != nil {
			return SecretKey{}, fmt.Errorf("openssh: %w", err)
		}
		var priv ed25519.PrivateKey
		switch p := raw.(type) {
		case ed25519.PrivateKey:
			priv = p
		case *ed25519.PrivateKey:
			priv = *p
		default:
			return SecretKey{}, fmt.Errorf("openssh: %T is not an Ed25519 key", raw)
		}
		return SecretKeyFromBytes(priv.Seed())
	}
	return ParseSecretKey(string(t))
}

// LoadOrCreate reads the secret key stored at path, or, if the file does
// not exist, generates a key and writes it there as iroh 0.28 does
// (OpenSSH private key format; mode 0600, parent directories created
// 0700), so the file is interchangeable with an iroh node's key file. A
// file that exists but does not hold a key is an error and is left
// untouched.
func LoadOrCreate(path string) (SecretKey, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, perr := ParseSecretKeyFile(b)
		if perr != nil {
			return SecretKey{}, fmt.Errorf("key: identity file %s is corrupt (want an OpenSSH Ed25519 private key or one line of base32/hex): %w", path, perr)
		}
		return k, nil
	case !errors.Is(err, fs.ErrNotExist):
		return SecretKey{}, fmt.Errorf("key: read identity: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return SecretKey{}, fmt.Errorf("key: create identity dir: %w", err)
	}
	k := GenerateSecretKey()
	content, err := k.MarshalOpenSSH()
	if err != nil {
		return SecretKey{}, err
	}
	// Write to a temp file and link it into place so a crash never leaves
	// a half-written identity, and a concurrent creator never gets
	// overwritten (os.Link fails if path exists).
	tmp, err := os.CreateTemp(filepath.Dir(path), ".identity-*")
	if err != nil {
		return SecretKey{}, fmt.Errorf("key: create identity: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return SecretKey{}, fmt.Errorf("key: create identity: %w", err)
	}
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return SecretKey{}, fmt.Errorf("key: write identity: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return SecretKey{}, fmt.Errorf("key: sync identity: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return SecretKey{}, fmt.Errorf("key: write identity: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadOrCreate(path) // lost a race with another creator: use theirs
		}
		return SecretKey{}, fmt.Errorf("key: install identity: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return k, nil
}
