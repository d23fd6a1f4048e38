package broker

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/meshkafka/meshkafka/wal"
)

// Registry stores the broker's durable metadata: cluster id and topics. The broker calls it
// under its admin lock, so implementations need no locking of their own. A later step may put
// it on a consensus engine; the file implementation is the single-node default.
type Registry interface {
	// Load returns the stored state, or (nil, nil) if nothing was ever stored.
	Load() (*RegistryState, error)
	// Store replaces the stored state atomically and durably: after it returns, a crash
	// leaves either the whole new state or (if it failed) the whole old one.
	Store(*RegistryState) error
}

// RegistryState is the broker metadata a Registry keeps.
type RegistryState struct {
	ClusterID string        `json:"cluster_id"`
	Topics    []TopicRecord `json:"topics"`
}

// TopicRecord is one topic's durable metadata.
type TopicRecord struct {
	Name       string            `json:"name"`
	ID         TopicID           `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// TopicID is Kafka's 16-byte topic id, stored as 32 hex digits.
type TopicID [16]byte

// MarshalText implements encoding.TextMarshaler.
func (id TopicID) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(id[:])), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *TopicID) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(id) {
		return fmt.Errorf("broker: topic id %q is not 32 hex digits", b)
	}
	_, err := hex.Decode(id[:], b)
	return err
}

// FileRegistry keeps the state in one file, replaced atomically: write a temp file, fsync it,
// rename it over the old one, fsync the directory. The file is a header line
// "meshkafka-registry v1 crc32c=<8 hex digits> len=<n>\n" followed by n bytes of JSON; a file
// whose checksum does not match is refused (Load errors) rather than read as "no topics".
type FileRegistry struct {
	FS   wal.FS
	Path string
}

const registryMagic = "meshkafka-registry v1"

// Load implements Registry.
func (r *FileRegistry) Load() (*RegistryState, error) {
	_ = r.FS.Remove(r.Path + ".tmp") // a Store interrupted before its rename
	f, err := r.FS.OpenFile(r.Path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("broker: registry: %w", err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("broker: registry: %w", err)
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil && size > 0 {
		return nil, fmt.Errorf("broker: registry: read %s: %w", r.Path, err)
	}
	st, err := decodeRegistry(buf)
	if err != nil {
		return nil, fmt.Errorf("broker: registry %s: %w", r.Path, err)
	}
	return st, nil
}

func decodeRegistry(buf []byte) (*RegistryState, error) {
	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		return nil, errors.New("no header line")
	}
	var sum uint32
	var n int
	if _, err := fmt.Sscanf(string(buf[:nl]), registryMagic+" crc32c=%08x len=%d", &sum, &n); err != nil {
		return nil, fmt.Errorf("bad header %q", buf[:nl])
	}
	body := buf[nl+1:]
	if len(body) != n {
		return nil, fmt.Errorf("body is %d bytes, header says %d", len(body), n)
	}
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, fmt.Errorf("checksum mismatch (stored %08x, computed %08x)", sum, got)
	}
	var st RegistryState
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func encodeRegistry(st *RegistryState) ([]byte, error) {
	body, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return nil, err
	}
	hdr := fmt.Sprintf(registryMagic+" crc32c=%08x len=%s\n", crc32.Checksum(body, castagnoli), strconv.Itoa(len(body)))
	return append([]byte(hdr), body...), nil
}

// Store implements Registry.
func (r *FileRegistry) Store(st *RegistryState) error {
	data, err := encodeRegistry(st)
	if err != nil {
		return fmt.Errorf("broker: registry: %w", err)
	}
	tmp := r.Path + ".tmp"
	f, err := r.FS.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("broker: registry: %w", err)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return fmt.Errorf("broker: registry: write: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("broker: registry: sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("broker: registry: %w", err)
	}
	if err := r.FS.Rename(tmp, r.Path); err != nil {
		return fmt.Errorf("broker: registry: %w", err)
	}
	if err := r.FS.SyncDir(filepath.Dir(r.Path)); err != nil {
		return fmt.Errorf("broker: registry: sync dir: %w", err)
	}
	return nil
}
