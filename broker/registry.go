package broker

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/meshkafka/meshkafka/wal"
)

// Registry stores the broker's durable metadata: cluster id and topics. The broker calls it
// under its admin lock, so implementations need no locking of their own. A later step may put
// it on a consensus engine; the file implementation is the single-node default.
type Registry interface {
	// Load returns the stored state, or (nil, nil) if nothing was ever stored.
	Load() (*RegistryState, error)
	// Store replaces the stored state atomically and durably: after it returns nil, a crash
	// leaves the whole new state; after any other error, the whole old one, except for an
	// error wrapping ErrRegistryFailed: then the outcome is unknown (either state may be the
	// durable one), and Store must keep failing with it, as the broker stops (see doc.go).
	Store(*RegistryState) error
}

// ErrRegistryFailed marks a registry write whose outcome is unknown (for FileRegistry: the
// rename or the directory fsync after it failed). The broker stops on it: admin ops and
// produces fail until it is restarted, which reads whichever state is durable.
var ErrRegistryFailed = errors.New("broker: registry write of unknown outcome; the broker stopped and must be restarted")

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
	// Replicas lists, per partition, the raft ids of the partition's replicas (the first
	// is the preferred leader). nil, or an entry of length ≤ 1, is a single-owner partition
	// (the broker serving it owns it alone); longer entries are replicated partitions, a
	// raft group of those replicas (see doc.go, "Replicated partitions").
	Replicas [][]uint64 `json:"replicas,omitempty"`
	// Joining lists, per partition (nil: none), the replicas of Replicas that join the
	// partition's existing raft group (a replica reassignment adds them, package
	// broker/controller): such a replica starts its group empty and waits for the leader,
	// never bootstrapping it with Replicas as its voters.
	Joining [][]uint64 `json:"joining,omitempty"`
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
//
// A failure before the rename leaves the old file in place and Store can be retried; a failed
// rename or directory fsync is an unknown outcome: Store returns an error wrapping
// ErrRegistryFailed, then and on every later call.
type FileRegistry struct {
	FS   wal.FS
	Path string

	failed error // sticky; wraps ErrRegistryFailed
}

const registryMagic = "meshkafka-registry v1"

var registryFile = jsonMetaFile[*RegistryState]{what: "registry", magic: registryMagic, perm: 0o644,
	failedErr: ErrRegistryFailed, decode: decodeRegistry}

// Load implements Registry.
func (r *FileRegistry) Load() (*RegistryState, error) { return registryFile.load(r.FS, r.Path) }

func decodeRegistry(buf []byte) (*RegistryState, error) {
	st, err := decodeJSONMeta[RegistryState](buf, registryMagic)
	if err != nil {
		return nil, err
	}
	return &st, nil
}

func encodeRegistry(st *RegistryState) ([]byte, error) { return encodeJSONMeta(registryMagic, st) }

// Store implements Registry.
func (r *FileRegistry) Store(st *RegistryState) error {
	return registryFile.store(r.FS, r.Path, &r.failed, st)
}

// storeRegistry writes st to the registry, unless the broker is stopped. A write of unknown
// outcome stops the broker: the state in memory may no longer be the durable one, so acting
// on either could acknowledge data the next start drops. Callers hold adminMu.
func (b *Broker) storeRegistry(st *RegistryState) error {
	if err := b.Err(); err != nil {
		return err
	}
	err := b.reg.Store(st)
	if errors.Is(err, ErrRegistryFailed) {
		b.stop(err)
	}
	return err
}

// stop puts the broker in the stopped state (the first error wins) and reports it loudly.
func (b *Broker) stop(err error) {
	if b.fatal.CompareAndSwap(nil, &err) {
		b.log.Error("broker: STOPPED: a durable write's outcome is unknown; admin ops and produces fail until the broker is restarted",
			"err", err)
		if b.cfg.OnStop != nil {
			b.cfg.OnStop(err)
		}
	}
}

// Err returns nil while the broker runs normally, and the reason once it stopped because a
// durable write's outcome is unknown (ErrRegistryFailed, or a failed write or fsync of the commit
// journal): from then on admin ops answer
// UNKNOWN_SERVER_ERROR and produces KAFKA_STORAGE_ERROR, with that reason as the message,
// until the process restarts the broker. A supervisor should watch it and restart.
func (b *Broker) Err() error {
	if p := b.fatal.Load(); p != nil {
		return *p
	}
	return nil
}
