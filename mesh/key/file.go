package key

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LoadOrCreate reads the secret key stored at path, or, if the file does
// not exist, generates a key and writes it there (mode 0600, parent
// directories created 0700). A file that exists but does not hold a key is
// an error and is left untouched.
func LoadOrCreate(path string) (SecretKey, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, perr := ParseSecretKey(strings.TrimSpace(string(b)))
		if perr != nil {
			return SecretKey{}, fmt.Errorf("key: identity file %s is corrupt (want one line of base32 or hex secret key): %w", path, perr)
		}
		return k, nil
	case !errors.Is(err, fs.ErrNotExist):
		return SecretKey{}, fmt.Errorf("key: read identity: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return SecretKey{}, fmt.Errorf("key: create identity dir: %w", err)
	}
	k := GenerateSecretKey()
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
	if _, err := tmp.WriteString(k.String() + "\n"); err != nil {
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
