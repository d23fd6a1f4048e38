package broker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/internal/u64file"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Producer ids (Kafka's InitProducerID for idempotent producers).
//
// Ids come from a durable counter, allocated in blocks of producerIDBlock as Kafka's
// ProducerIdManager does: before the first id of a block is handed out, the block's end is
// written to Dir/producer_ids (write to a temp file, fsync, rename, fsync the directory). A
// restart continues from the persisted end, so an id is never handed out twice even if the
// broker is killed; at most one block's worth of ids is skipped per restart.
//
// File layout (14 bytes, big-endian): magic "PI" | next block start u64 | CRC-32C of the
// first 10 bytes u32.

const (
	producerIDBlock = 1000
	producerIDsFile = "producer_ids"
)

// producerIDs is the broker's producer id allocator; the zero value loads lazily.
type producerIDs struct {
	mu     sync.Mutex
	loaded bool
	next   int64                 // next id to hand out
	end    int64                 // ids below end are covered by the persisted block
	source func() (int64, error) // set by SetProducerIDSource: ids come from there instead
}

// SetProducerIDSource makes next the broker's source of producer ids, for the transaction
// coordinator and InitProducerID alike: broker/controller sets it to the metadata quorum's
// blocks, so a broker of a quorum never hands out an id from its own counter file that the
// quorum also hands out. Until it is set, ids come from Dir/producer_ids.
func (b *Broker) SetProducerIDSource(next func() (int64, error)) {
	b.pids.mu.Lock()
	defer b.pids.mu.Unlock()
	b.pids.source = next
}

// errNoProducerIDs is returned once the id space is exhausted (never in practice).
var errNoProducerIDs = errors.New("broker: producer id space exhausted")

// InitProducerID hands out a fresh producer id at epoch 0. As in Kafka's non-transactional
// case, a request carrying the producer's current id and epoch (an epoch bump, KIP-360) also
// gets a fresh id at epoch 0: the producer restarts its sequences at 0 under the new id.
// Allocation failures (the counter file cannot be written) answer COORDINATOR_NOT_AVAILABLE,
// which clients retry.
func (b *Broker) InitProducerID(_ context.Context, req *brokerop.InitProducerIDReq) (*brokerop.InitProducerIDResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.InitProducerIDResp{ProducerID: -1, ProducerEpoch: -1}
	if (req.ProducerID < 0) != (req.ProducerEpoch < 0) {
		resp.ErrorCode = kerr.InvalidRequest.Code // Kafka: both or neither
		return resp, nil
	}
	id, err := b.allocProducerID()
	if err != nil {
		b.log.Error("broker: allocate producer id", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}

func (b *Broker) allocProducerID() (int64, error) {
	a := &b.pids
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.source != nil {
		return a.source()
	}
	path := filepath.Join(b.cfg.Dir, producerIDsFile)
	if !a.loaded {
		end, err := loadProducerIDBlock(b.fs, path)
		if err != nil {
			return 0, err
		}
		a.next, a.end, a.loaded = end, end, true
	}
	if a.next >= a.end {
		if a.end > math.MaxInt64-producerIDBlock {
			return 0, errNoProducerIDs
		}
		end := a.end + producerIDBlock
		if err := storeProducerIDBlock(b.fs, path, end); err != nil {
			return 0, err
		}
		a.next, a.end = max(a.next, a.end), end
	}
	id := a.next
	a.next++
	return id, nil
}

func encodeProducerIDBlock(end int64) []byte { return u64file.Encode("PI", uint64(end)) }

// decodeProducerIDBlock parses the producer_ids file.
func decodeProducerIDBlock(b []byte) (int64, error) {
	v, err := u64file.Decode(b, "PI", "broker: "+producerIDsFile)
	if err != nil {
		return 0, err
	}
	end := int64(v)
	if end < 0 {
		return 0, fmt.Errorf("broker: %s: negative block end %d", producerIDsFile, end)
	}
	return end, nil
}

// loadProducerIDBlock reads the persisted block end; 0 when the file does not exist yet.
func loadProducerIDBlock(fsys wal.FS, path string) (int64, error) {
	_ = fsys.Remove(path + ".tmp") // a store interrupted before its rename
	buf, ok, err := readSmallFile(fsys, path, 1<<10)
	if err != nil || !ok {
		return 0, err
	}
	return decodeProducerIDBlock(buf)
}

func storeProducerIDBlock(fsys wal.FS, path string, end int64) error {
	return writeFileAtomic(fsys, path, encodeProducerIDBlock(end))
}

// readSmallFile reads a whole file of at most limit bytes; ok is false if it does not exist.
func readSmallFile(fsys wal.FS, path string, limit int64) (buf []byte, ok bool, err error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, false, err
	}
	if size > limit {
		return nil, false, fmt.Errorf("broker: %s is %d bytes, above the limit %d", path, size, limit)
	}
	buf, err = wal.ReadAll(f)
	return buf, err == nil, err
}

// writeFileAtomic replaces path with data durably: temp file, fsync, rename, fsync the
// directory (replaceMetaFile, for a caller that treats every failure alike).
func writeFileAtomic(fsys wal.FS, path string, data []byte) error {
	_, err := replaceMetaFile(fsys, path, 0o644, data)
	return err
}

// ProducerIDsEnd returns the end of the last producer-id block a broker in dir persisted
// (0 if it never handed out one): every id it handed out is below it. The metadata quorum
// uses it to never hand those ids out again when it takes over a broker's data directory.
func ProducerIDsEnd(fsys wal.FS, dir string) (int64, error) {
	if fsys == nil {
		fsys = wal.OSFS()
	}
	return loadProducerIDBlock(fsys, filepath.Join(dir, producerIDsFile))
}
