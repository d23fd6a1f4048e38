package cli

import (
	"flag"
	"fmt"
	"time"

	"github.com/meshkafka/meshkafka/broker"
)

// Storage is the commit journal's tuning the binaries that hold a broker expose
// (wal.StoreOptions): -wal-checkpoint-interval and -wal-syncfs-min-logs.
type Storage struct {
	CheckpointInterval time.Duration
	SyncFSMinLogs      int
}

// Register registers the storage flags on fs.
func (s *Storage) Register(fs *flag.FlagSet) {
	fs.DurationVar(&s.CheckpointInterval, "wal-checkpoint-interval", 0,
		"how often the commit journal's checkpoint runs while anything is unwritten (0: 30s; it also runs after 32 MiB of journal, or 256 KiB per partition written)")
	fs.IntVar(&s.SyncFSMinLogs, "wal-syncfs-min-logs", 0,
		"a checkpoint of at least this many written partitions syncs the whole filesystem (syncfs) instead of fsyncing each (0: 64; -1: never, e.g. on a filesystem shared with heavy writers)")
}

// Check refuses a negative checkpoint interval (the journal would never be checkpointed).
func (s Storage) Check() error {
	if s.CheckpointInterval < 0 {
		return fmt.Errorf("-wal-checkpoint-interval %v is negative", s.CheckpointInterval)
	}
	return nil
}

// Apply sets cfg's journal options from s.
func (s Storage) Apply(cfg *broker.Config) {
	cfg.Store.CheckpointInterval, cfg.Store.SyncFSMinLogs = s.CheckpointInterval, s.SyncFSMinLogs
}
