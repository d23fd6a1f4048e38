package broker

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/meshkafka/meshkafka/broker/share"
	"github.com/meshkafka/meshkafka/broker/share/coord"
	"github.com/meshkafka/meshkafka/broker/txn"
	"github.com/meshkafka/meshkafka/wal"
)

// Config configures a Broker. Zero values get the defaults named on each field.
type Config struct {
	Dir               string // data directory (topic registry + partition logs); required
	DefaultPartitions int32  // auto-created topics and CreateTopics with -1; 0 → 1
	NodeID            int32  // the Kafka-visible broker id (0 in-process)
	FS                wal.FS // nil → wal.OSFS()
	SegmentBytes      int64  // broker default segment.bytes; 0 → Kafka's 1 GiB
	// TopicDefaults are broker-level defaults for topic configs, by topic config name
	// (e.g. "retention.ms": "60000"); DescribeConfigs reports them as STATIC_BROKER_CONFIG.
	// Validated by Open like CreateTopics configs.
	TopicDefaults map[string]string
	// RetentionCheckInterval is how often the owned goroutine enforces retention;
	// 0 → 5 minutes (Kafka's log.retention.check.interval.ms), < 0 → never (tests call
	// EnforceRetention).
	RetentionCheckInterval time.Duration
	// FlushInterval is how often the background flusher fsyncs unsynced data (acks=0/1
	// produces, and flush.ms on relaxed topics); 0 → 1s, < 0 → never (tests call Flush).
	FlushInterval time.Duration
	Now           func() time.Time // nil → time.Now (retention, flush.ms, transaction timeouts)
	// TxnCheckInterval is how often transaction timeouts are checked and unfinished
	// transaction completions retried (0: 1s; negative: never by itself, see TxnCheck).
	TxnCheckInterval time.Duration
	// Share holds the share-group settings (share.record.lock.duration.ms,
	// share.delivery.count.limit, group.share.*; zero fields: Kafka's defaults).
	Share    share.Config
	Logger   *slog.Logger // nil → discard
	Registry Registry     // nil → FileRegistry at Dir/topics.registry
	Rand     io.Reader    // topic and cluster ids; nil → crypto/rand
	// OnStop, if set, is called once (from the failing op's goroutine; it must not block) when
	// the broker stops because a write's outcome is unknown (see Err): a binary exits on it.
	OnStop func(err error)
	// MaxPartitions caps the partitions of all topics of this broker together; CreateTopics,
	// CreatePartitions and auto-creation past it answer INVALID_PARTITIONS naming the limit.
	// 0 → DefaultMaxPartitions.
	MaxPartitions int
	// Store tunes the node-wide commit journal under Dir/commitlog that every partition log
	// writes through (FS and Logger are the broker's). The zero value is the default.
	Store wal.StoreOptions
	// RaftStorage opens a replicated partition's raft storage on its log (replicated.go);
	// nil → raftstore.Open.
	RaftStorage OpenRaftStorage
	// CleanerBackoff is how often the log cleaner goroutine looks for compacted partitions
	// to clean (log.cleaner.backoff.ms); 0 → DefaultCleanerBackoff, < 0 → never (tests call
	// Compact).
	CleanerBackoff time.Duration
	// CleanerIOBytesPerSecond caps the log cleaner's reads and writes together, over all
	// partitions (log.cleaner.io.max.bytes.per.second); 0 → no limit (Kafka's default).
	CleanerIOBytesPerSecond float64
	// CleanerDedupeBufferBytes bounds the log cleaner's offset map (log.cleaner.dedupe.buffer.size,
	// counted as Kafka does at 24 bytes per key; Go's map takes about twice that): a round
	// ends before the dirty segment at which the map is full, and the next round goes on from
	// there. 0 → 128 MiB.
	CleanerDedupeBufferBytes int64
	// CleanerSleep waits for the cleaner's I/O limit (nil → a timer); tests pass one that
	// advances their clock.
	CleanerSleep func(ctx context.Context, d time.Duration) error
	// ReplicaCheckInterval is how often the background goroutine checks the replicated
	// partitions this broker leads for ISR changes (CheckReplicas; leadership changes are
	// checked at once); 0 → 500ms, < 0 → only on leadership changes.
	ReplicaCheckInterval time.Duration
}

// DefaultMaxPartitions is Config.MaxPartitions' default. An idle partition costs about a
// hundred bytes of broker memory and no descriptor or goroutine (its log is opened on first
// use), so the cap is there to bound one request's allocations, not the steady state.
const DefaultMaxPartitions = 1_000_000

// ErrClosed is returned by every op once Close has begun.
var ErrClosed = errors.New("broker: closed")

// Broker owns topics and their partition logs. All methods are safe for concurrent use.
//
// Lock order: adminMu, then a partition's mu. The hot paths (Produce, Fetch, ListOffsets)
// take no broker-wide lock: they read the topic map through an atomic pointer that admin ops
// replace (copy on write) under adminMu.
type Broker struct {
	// Constant after Open.
	cfg       Config
	fs        wal.FS
	log       *slog.Logger
	reg       Registry
	store     *wal.Store // the commit journal every partition log joins; closed by Close
	clusterID string
	topicsDir string

	topics atomic.Pointer[map[string]*topic] // copy on write under adminMu

	adminMu sync.Mutex // serialises admin ops (create, delete, alter) and registry writes

	closed    atomic.Bool
	closing   chan struct{} // closed by Close: stops the background goroutine, wakes fetches
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup // the background goroutine

	pids   producerIDs        // InitProducerID's durable counter (producer_ids.go)
	quotas quotaStore         // client quotas (quotas.go)
	txn    *txn.Coordinator   // the transaction coordinator (txn_ops.go); set by Open
	share  *coord.Coordinator // the share-group coordinator (share_ops.go); set by Open
	// shareRead, when set (SetShareReader), is where the share ops read partitions.
	shareRead atomic.Pointer[ShareReader]
	// shareExt, when set (SetShareCoordinator), is the coordinator the share ops use instead
	// of share (in a cluster: the quorum's, while this broker leads; nil inside: none).
	shareExt atomic.Pointer[extShare]
	// txnVerify, when set (SetTxnVerifier), checks transactional batches instead of txn
	// (the coordinator runs on another broker).
	txnVerify atomic.Pointer[TxnVerifier]
	txnExt    atomic.Pointer[extCoordinator] // SetTxnCoordinator (txn_ops.go)
	// txnMembers fences TxnOffsetCommit by group membership (SetTxnOffsetSink, KIP-447).
	txnMembers atomic.Pointer[TxnMemberChecker]

	fatal atomic.Pointer[error] // set once by stop: a durable write's outcome is unknown (registry.go)

	// Replicated partitions (replicated.go).
	repl      atomic.Pointer[replication]        // set once by SetReplication
	partState atomic.Pointer[PartitionStateFunc] // OnPartitionState
	replKick  chan struct{}                      // wakes the background goroutine's CheckReplicas
	checkMu   sync.Mutex                         // one CheckReplicas at a time
	// As the last CheckReplicas counted them: replicated partitions this broker leads and
	// serves, and those of them with fewer in-sync replicas than replicas.
	replLeaders, replUnder atomic.Int64

	// The log cleaner (compact.go): its I/O limit, and the cancel of its passes (Close).
	cleaner     *ioThrottle
	cleanCancel context.CancelFunc

	partitions  atomic.Int64 // partitions of all topics (MaxPartitions)
	openLogs    atomic.Int64 // partitions whose log is open now
	produceReqs atomic.Int64 // Produce calls since Open
}

// topic is one topic. name, id and dir never change; parts and cfg are replaced atomically
// under the broker's adminMu.
type topic struct {
	name  string
	id    TopicID
	dir   string
	parts atomic.Pointer[[]*partition]
	cfg   atomic.Pointer[topicConfig]
	// replicas: per partition, the raft ids of its replicas (TopicRecord.Replicas; nil or
	// an entry of length ≤ 1: single-owner). Replaced under adminMu.
	replicas atomic.Pointer[[][]uint64]
	// joining: per partition, the replicas that join an existing raft group
	// (TopicRecord.Joining). Replaced under adminMu.
	joining atomic.Pointer[[][]uint64]
}

// partition is one partition's log plus the fetch long-poll waiters. An idle partition is
// this struct only (about a hundred bytes): its log is opened on first use (useLog), its
// producer state and waiter list are allocated when first needed.
type partition struct {
	t     *topic
	index int32

	deleted atomic.Bool  // set before the log is removed
	synced  atomic.Int64 // Now() in ns of the last fsync that caught up (flush.ms)

	// logMu is held for reading around every use of log and for writing to open it, to
	// replace it (a segment.bytes change reopens the log) or to close it. fsyncs of a
	// produce run without it; see sync.
	logMu sync.RWMutex
	log   *wal.Log // nil until first use
	// onDisk (guarded by logMu): the partition's directory may exist. false means the
	// partition was never written: an empty log at offset 0 that reads need not open.
	onDisk bool
	// openFailed (guarded by logMu): an open of this log failed since the last successful
	// one, so the next successful open fsyncs the log's directory entries itself.
	openFailed bool

	mu      sync.Mutex      // guards waiters
	waiters []chan struct{} // fetches waiting for data: each gets a non-blocking send

	producers atomic.Pointer[producerState] // idempotent producers' state, on first use (producer_state.go)
	group     atomic.Pointer[replGroup]     // the partition's raft group if it runs here (replicated.go)
	logStart  atomic.Int64                  // log start offset set by DeleteRecords (records.go); 0 if none
	// cleaning cancels the log cleaner's pass over this partition while one runs (it holds
	// logMu for reading throughout): whoever takes logMu for writing goes through
	// lockLogForWrite.
	cleaning atomic.Pointer[context.CancelFunc]
	// writers counts callers of lockLogForWrite waiting for logMu: a cleaning that gets
	// logMu meanwhile gives it up at once.
	writers atomic.Int32
}

// lockLogForWrite takes p.logMu for writing, first stopping a cleaning of p in progress (it
// holds logMu for reading throughout and gives it up soon after). Either the cleaning stored
// its cancel before this loads it (and is cancelled), or it finds writers > 0 once it has
// logMu (and leaves).
func (p *partition) lockLogForWrite() {
	p.writers.Add(1)
	if c := p.cleaning.Load(); c != nil {
		(*c)()
	}
	p.logMu.Lock()
	p.writers.Add(-1)
}

// setReplicas sets the topic's per-partition replica lists (a copy of reps).
func (t *topic) setReplicas(reps [][]uint64) { storeIDLists(&t.replicas, reps) }

// setJoining sets the topic's per-partition joining replicas (a copy of js).
func (t *topic) setJoining(js [][]uint64) { storeIDLists(&t.joining, js) }

// storeIDLists stores a copy of lists in p, or nil if there are none.
func storeIDLists(p *atomic.Pointer[[][]uint64], lists [][]uint64) {
	if len(lists) == 0 {
		p.Store(nil)
		return
	}
	cp := make([][]uint64, len(lists))
	for i, r := range lists {
		cp[i] = slices.Clone(r)
	}
	p.Store(&cp)
}

// joins reports whether replica id joins partition i's existing raft group (it must not
// bootstrap it).
func (t *topic) joins(i int32, id uint64) bool {
	js := t.joining.Load()
	return js != nil && int(i) < len(*js) && slices.Contains((*js)[i], id)
}

// dir is the partition's log directory.
func (p *partition) dir() string { return filepath.Join(p.t.dir, strconv.Itoa(int(p.index))) }

// errPartitionDeleted is useLog's answer for a partition whose topic is being deleted.
var errPartitionDeleted = errors.New("broker: partition deleted")

// useLog returns p's log with p.logMu read-held; the caller releases it with
// p.logMu.RUnlock() whatever the result. The log is opened on first use. Without create, a
// partition that was never written answers a nil log (an empty log at offset 0) without
// touching the disk; with create (appends) it is opened, creating its directory.
func (b *Broker) useLog(p *partition, create bool) (*wal.Log, error) {
	p.logMu.RLock()
	for {
		switch {
		case p.deleted.Load():
			return nil, errPartitionDeleted
		case p.log != nil || !create && !p.onDisk:
			return p.log, nil
		}
		p.logMu.RUnlock()
		p.logMu.Lock()
		var err error
		switch {
		case b.closed.Load():
			err = ErrClosed
		case p.log == nil && !p.deleted.Load():
			err = b.openPartitionLocked(p)
		}
		p.logMu.Unlock()
		p.logMu.RLock()
		if err != nil {
			return nil, err
		}
	}
}

// openPartitionLocked opens p's log (creating it if needed). Callers hold p.logMu.
func (b *Broker) openPartitionLocked(p *partition) error {
	l, err := b.openLog(p.dir(), p.t.cfg.Load().segmentBytes)
	if err == nil {
		if err = b.loadLogStart(p); err != nil {
			l.Close()
		}
	}
	if err != nil {
		p.openFailed = true
		return err
	}
	if p.openFailed {
		// An earlier open may have created the directory and files and then failed to make
		// them durable; this open found them and did not fsync their entries again (wal
		// does so only for a log it creates). Make them durable before any append is
		// acknowledged in them.
		err := b.fs.SyncDir(p.dir())
		if errors.Is(err, fs.ErrNotExist) {
			err = nil // not created yet (LazyDir): the wal makes it durable when it does
		}
		if err == nil {
			err = b.fs.SyncDir(p.t.dir)
		}
		if err != nil {
			l.Close()
			return err
		}
		p.openFailed = false
	}
	p.log, p.onDisk = l, true
	p.synced.Store(b.cfg.Now().UnixNano())
	b.openLogs.Add(1)
	return nil
}

// closePartitionLocked closes p's open log. Callers hold p.logMu for writing.
func (b *Broker) closePartitionLocked(p *partition) error {
	l := p.log
	err := l.Close()
	b.openLogs.Add(-1)
	p.log = nil
	return err
}

// Open opens (or creates) a broker's data directory: loads the topic registry, lists which
// partitions have data on disk (their logs are opened, and torn tails recovered, on first
// use), purges data of topics no longer registered (a delete interrupted by a crash) and
// starts the background goroutine.
func Open(cfg Config) (*Broker, error) {
	if cfg.Dir == "" {
		return nil, errors.New("broker: Config.Dir is required")
	}
	if cfg.DefaultPartitions <= 0 {
		cfg.DefaultPartitions = 1
	}
	if cfg.FS == nil {
		cfg.FS = wal.OSFS()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.RetentionCheckInterval == 0 {
		cfg.RetentionCheckInterval = 5 * time.Minute
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.ReplicaCheckInterval == 0 {
		cfg.ReplicaCheckInterval = 500 * time.Millisecond
	}
	defaults := make(map[string]string, len(cfg.TopicDefaults)+1)
	for k, v := range cfg.TopicDefaults {
		defaults[k] = v
	}
	if cfg.SegmentBytes > 0 {
		if _, ok := defaults["segment.bytes"]; !ok {
			defaults["segment.bytes"] = strconv.FormatInt(cfg.SegmentBytes, 10)
		}
	}
	defaults, err := validateConfigs(defaults)
	if err != nil {
		return nil, fmt.Errorf("broker: Config.TopicDefaults: %w", err)
	}
	cfg.TopicDefaults = defaults
	if cfg.Registry == nil {
		cfg.Registry = &FileRegistry{FS: cfg.FS, Path: filepath.Join(cfg.Dir, "topics.registry")}
	}
	b := &Broker{
		cfg:       cfg,
		fs:        cfg.FS,
		log:       cfg.Logger,
		reg:       cfg.Registry,
		topicsDir: filepath.Join(cfg.Dir, "topics"),
		closing:   make(chan struct{}),
		replKick:  make(chan struct{}, 1),
	}
	if err := wal.MkdirDurable(b.fs, b.topicsDir); err != nil { // Dir and topics, and their entries
		return nil, fmt.Errorf("broker: %w", err)
	}
	sopts := cfg.Store
	sopts.FS, sopts.Logger = b.fs, cfg.Logger
	// A failed journal write or fsync leaves the durable state unknown past the last good
	// fsync (fsyncgate): stop, so that the process restarts and recovery runs.
	sopts.OnFail = b.stop
	if sopts.Replay.SegmentBytes == 0 {
		sopts.Replay.SegmentBytes = cfg.SegmentBytes
	}
	// Recovery replays the journal into the partition logs before any of them is opened.
	if b.store, err = wal.OpenStore(cfg.Dir, sopts); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	st, err := b.reg.Load()
	if err != nil {
		b.store.Close()
		return nil, err
	}
	if st == nil {
		st = &RegistryState{ClusterID: b.newClusterID()}
		if err := b.reg.Store(st); err != nil {
			b.store.Close()
			return nil, err
		}
	}
	b.clusterID = st.ClusterID
	topics := make(map[string]*topic, len(st.Topics))
	for _, rec := range st.Topics {
		cfgs, err := validateConfigs(rec.Configs)
		if err != nil {
			b.store.Close()
			return nil, fmt.Errorf("broker: registry: topic %q: %w", rec.Name, err)
		}
		t := b.newTopic(rec.Name, rec.ID, cfgs)
		t.setReplicas(rec.Replicas)
		t.setJoining(rec.Joining)
		parts := b.newPartitions(t, 0, rec.Partitions, b.partitionsOnDisk(t))
		t.parts.Store(&parts)
		topics[t.name] = t
		// Partition logs open on first use and make only their own directory's parent (the
		// topic directory) durable: a topic directory a crash lost is made again now.
		if err := b.fs.MkdirAll(t.dir, 0o755); err != nil {
			b.store.Close()
			return nil, fmt.Errorf("broker: %w", err)
		}
	}
	// A registered topic whose directory a crash lost was just created again: make its
	// entry durable before anything is acknowledged in it.
	if err := b.fs.SyncDir(b.topicsDir); err != nil {
		b.store.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	b.topics.Store(&topics)
	for _, t := range topics {
		b.partitions.Add(int64(len(*t.parts.Load())))
	}
	b.purgeUnregistered(topics)
	if err := b.openTxn(); err != nil { // txn_ops.go
		b.store.Close()
		return nil, fmt.Errorf("broker: transaction coordinator: %w", err)
	}
	if err := b.openShare(); err != nil { // share_ops.go
		b.txn.Close()
		b.store.Close()
		return nil, fmt.Errorf("broker: share coordinator: %w", err)
	}
	b.wg.Add(1)
	go b.run()
	if b.cfg.CleanerDedupeBufferBytes <= 0 {
		b.cfg.CleanerDedupeBufferBytes = 128 << 20
	}
	b.cleaner = &ioThrottle{rate: cfg.CleanerIOBytesPerSecond, now: cfg.Now, sleep: cfg.CleanerSleep}
	if b.cleaner.sleep == nil {
		b.cleaner.sleep = sleepCtx
	}
	var cleanCtx context.Context
	cleanCtx, b.cleanCancel = context.WithCancel(context.Background())
	if b.cfg.CleanerBackoff == 0 {
		b.cfg.CleanerBackoff = DefaultCleanerBackoff
	}
	if b.cfg.CleanerBackoff > 0 {
		b.wg.Add(1)
		go b.cleanerLoop(cleanCtx)
	}
	return b, nil
}

func (b *Broker) newClusterID() string {
	var id [16]byte
	b.randomFill(id[:])
	return base64.RawURLEncoding.EncodeToString(id[:])
}

func (b *Broker) randomFill(p []byte) {
	if _, err := io.ReadFull(b.cfg.Rand, p); err != nil {
		panic("broker: random source failed: " + err.Error())
	}
}

// newTopicID returns a random id that is neither Kafka's zero id nor its reserved id 1.
func (b *Broker) newTopicID() TopicID {
	for {
		var id TopicID
		b.randomFill(id[:])
		var reserved TopicID
		if id == reserved {
			continue
		}
		reserved[15] = 1
		if id != reserved {
			return id
		}
	}
}

func (b *Broker) newTopic(name string, id TopicID, overrides map[string]string) *topic {
	t := &topic{name: name, id: id, dir: filepath.Join(b.topicsDir, topicDirName(name, id))}
	t.cfg.Store(resolveConfig(overrides, b.cfg.TopicDefaults))
	empty := []*partition{}
	t.parts.Store(&empty)
	return t
}

// topicDirName is "<name>-<id hex>": the id keeps a recreated topic's directory apart from
// a deleted one's that is still being purged.
func topicDirName(name string, id TopicID) string {
	return name + "-" + hex.EncodeToString(id[:])
}

// newPartitions returns partitions [from, to) of t, none of them open: onDisk(i) says
// whether partition i may have a directory (nil: none has).
func (b *Broker) newPartitions(t *topic, from, to int32, onDisk func(int32) bool) []*partition {
	parts := make([]*partition, 0, to-from)
	for i := from; i < to; i++ {
		p := &partition{t: t, index: i, onDisk: onDisk != nil && onDisk(i)}
		parts = append(parts, p)
	}
	return parts
}

// partitionsOnDisk lists t's directory once and reports which partitions have a directory.
// If the listing fails every partition is assumed to have one (its open then says why).
func (b *Broker) partitionsOnDisk(t *topic) func(int32) bool {
	names, err := b.fs.ReadDir(t.dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			b.log.Warn("broker: list topic dir", "topic", t.name, "err", err)
			return func(int32) bool { return true }
		}
		return nil
	}
	have := make(map[int32]bool, len(names))
	for _, n := range names {
		if i, err := strconv.ParseInt(n, 10, 32); err == nil {
			have[int32(i)] = true
		}
	}
	return func(i int32) bool { return have[i] }
}

// openLog opens a partition log as a member of the broker's commit journal: its appends are
// made durable by the journal's group commit, shared by every partition (see package wal).
func (b *Broker) openLog(dir string, segmentBytes int64) (*wal.Log, error) {
	// LazyDir: a partition's directory is created by its first flush or checkpoint, not on
	// the produce path (the journal holds its entries meanwhile; wal/doc.go).
	return b.store.OpenLog(dir, wal.Options{SegmentBytes: segmentBytes, Now: b.cfg.Now, Stamp: stampOffsets, LazyDir: true})
}

// reopenLocked reopens a topic's open partition logs so that a changed segment.bytes applies
// from the next segment on (as in Kafka); logs not open yet pick it up when they open. Ops in
// flight finish on the old log first; a produce's fsync that meets the closed old log is
// satisfied by Close's own fsync (see sync). Callers hold adminMu.
func (b *Broker) reopenLocked(t *topic) {
	for _, p := range *t.parts.Load() {
		if p.group.Load() != nil {
			continue // its raft storage holds the log: the new size applies at its next open
		}
		p.lockLogForWrite()
		if p.log != nil {
			if err := b.closePartitionLocked(p); err != nil {
				b.log.Warn("broker: close log for reopen", "topic", t.name, "partition", p.index, "err", err)
			}
			if err := b.openPartitionLocked(p); err != nil {
				// The partition stays closed: its next use tries to open it again (and
				// answers KAFKA_STORAGE_ERROR while that fails).
				b.log.Error("broker: reopen log", "topic", t.name, "partition", p.index, "err", err)
			}
		}
		p.logMu.Unlock()
	}
}

// purgeUnregistered removes topic directories that belong to no registered topic: data of a
// DeleteTopics (or a failed CreateTopics) interrupted by a crash.
func (b *Broker) purgeUnregistered(topics map[string]*topic) {
	names, err := b.fs.ReadDir(b.topicsDir)
	if err != nil {
		b.log.Warn("broker: list topic dirs", "err", err)
		return
	}
	live := make(map[string]bool, len(topics))
	for _, t := range topics {
		live[filepath.Base(t.dir)] = true
	}
	purged := false
	for _, n := range names {
		if live[n] || strings.HasSuffix(n, ".tmp") {
			continue
		}
		b.log.Info("broker: purging data of unregistered topic", "dir", n)
		if err := b.fs.RemoveAll(filepath.Join(b.topicsDir, n)); err != nil {
			b.log.Warn("broker: purge", "dir", n, "err", err)
		}
		purged = true
	}
	if purged {
		_ = b.fs.SyncDir(b.topicsDir)
	}
}

// Close stops the background goroutine, wakes every waiting fetch and closes every partition
// log. It is idempotent; later calls return the first call's result.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		txnErr := b.txn.Close() // it writes markers: first
		shareErr := b.share.Close()
		b.closed.Store(true)
		b.cleanCancel() // a cleaning in progress stops (it holds a partition's log)
		close(b.closing)
		b.wg.Wait()
		b.adminMu.Lock()
		defer b.adminMu.Unlock()
		// The raft groups first: the engine no longer writes to their logs once they are out.
		for _, t := range *b.topics.Load() {
			for _, p := range *t.parts.Load() {
				b.stopGroup(p)
			}
		}
		var errs []error
		for _, t := range *b.topics.Load() {
			for _, p := range *t.parts.Load() {
				p.logMu.Lock()
				if l := p.log; l != nil {
					if err := b.closePartitionLocked(p); err != nil {
						errs = append(errs, err)
					} else {
						b.snapshotProducers(p, l, true) // the log is closed and fully synced
					}
				}
				p.logMu.Unlock()
			}
		}
		if err := b.store.Close(); err != nil {
			errs = append(errs, err)
		}
		if len(errs) == 0 && txnErr == nil && b.Err() == nil {
			// Everything acknowledged is durable: the next open need not abort the
			// transactions left open (openTxn).
			if err := b.writeCleanStop(); err != nil {
				errs = append(errs, fmt.Errorf("broker: clean-stop file: %w", err))
			}
		}
		b.closeErr = errors.Join(append(errs, txnErr, shareErr)...)
	})
	return b.closeErr
}

// ClusterID is the cluster id, stable across restarts.
func (b *Broker) ClusterID() string { return b.clusterID }

// lookup finds a partition; nil if the topic or partition does not exist.
func (b *Broker) lookup(name string, index int32) *partition {
	t := (*b.topics.Load())[name]
	if t == nil {
		return nil
	}
	parts := *t.parts.Load()
	if index < 0 || int(index) >= len(parts) {
		return nil
	}
	return parts[index]
}

// sortedTopics returns the current topics by name.
func (b *Broker) sortedTopics() []*topic {
	m := *b.topics.Load()
	out := make([]*topic, 0, len(m))
	for _, t := range m {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// run is the background goroutine: retention and the flusher.
func (b *Broker) run() {
	defer b.wg.Done()
	var retC, flushC <-chan time.Time
	if d := b.cfg.RetentionCheckInterval; d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		retC = t.C
	}
	if d := b.cfg.FlushInterval; d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		flushC = t.C
	}
	var replC <-chan time.Time
	if d := b.cfg.ReplicaCheckInterval; d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		replC = t.C
	}
	for {
		select {
		case <-b.closing:
			return
		case <-replC:
			b.CheckReplicas()
		case <-b.replKick:
			b.CheckReplicas()
		case <-retC:
			if _, err := b.EnforceRetention(); err != nil {
				b.log.Warn("broker: retention", "err", err)
			}
		case <-flushC:
			if err := b.Flush(); err != nil {
				b.log.Warn("broker: flush", "err", err)
			}
		}
	}
}

// EnforceRetention applies every topic's retention.ms and retention.bytes once, deleting
// whole old segments. It returns how many segments went. The background goroutine calls it
// every RetentionCheckInterval.
func (b *Broker) EnforceRetention() (int, error) {
	if b.closed.Load() {
		return 0, ErrClosed
	}
	total := 0
	var errs []error
	for _, t := range b.sortedTopics() {
		cfg := t.cfg.Load()
		for _, p := range *t.parts.Load() {
			if p.deleted.Load() {
				continue
			}
			var n int
			var start int64
			var err error
			if p.replicated() {
				g := p.group.Load()
				if g == nil {
					continue // not a replica here (or replication not set up yet)
				}
				n, start, err = b.retainReplicated(context.Background(), p, g, cfg)
			} else {
				n, start, err = b.retainPartition(p, cfg)
			}
			total += n
			if err != nil && !p.deleted.Load() {
				errs = append(errs, fmt.Errorf("%s-%d: %w", t.name, p.index, err))
			}
			if n > 0 {
				b.log.Info("broker: retention removed segments", "topic", t.name, "partition", p.index,
					"segments", n, "log_start_offset", start)
			}
		}
	}
	return total, errors.Join(errs...)
}

// retainPartition applies retention to one partition. A log that is not open but has data
// on disk is opened for it and closed again, so that retention never leaves cold partitions
// holding descriptors.
func (b *Broker) retainPartition(p *partition, cfg *topicConfig) (n int, start int64, err error) {
	if !cfg.deleteOld {
		return 0, 0, nil // cleanup.policy=compact: the cleaner, not retention, removes data
	}
	p.logMu.RLock()
	if l := p.log; l != nil {
		n, err = l.Retain(cfg.retentionMs, cfg.retentionBytes)
		start = l.StartOffset()
		p.logMu.RUnlock()
		return n, start, err
	}
	p.logMu.RUnlock()
	p.logMu.Lock()
	defer p.logMu.Unlock()
	if p.log != nil || !p.onDisk || p.deleted.Load() || b.closed.Load() {
		return 0, 0, nil // opened meanwhile (the next round retains it), or nothing on disk
	}
	if err := b.openPartitionLocked(p); err != nil {
		return 0, 0, err
	}
	n, err = p.log.Retain(cfg.retentionMs, cfg.retentionBytes)
	start = p.log.StartOffset()
	if cerr := b.closePartitionLocked(p); err == nil {
		err = cerr
	}
	return n, start, err
}

// Flush fsyncs unsynced data: on topics with the default durability policy always (data
// produced with acks=0/1), on relaxed topics (flush.messages / flush.ms set) once the last
// fsync is flush.ms old. The background flusher calls it every FlushInterval.
func (b *Broker) Flush() error {
	if b.closed.Load() {
		return ErrClosed
	}
	now := b.cfg.Now().UnixNano()
	var errs []error
	for _, t := range b.sortedTopics() {
		cfg := t.cfg.Load()
		for _, p := range *t.parts.Load() {
			if err := b.flushPartition(p, cfg, now); err != nil && !p.deleted.Load() {
				errs = append(errs, fmt.Errorf("%s-%d: %w", t.name, p.index, err))
			}
		}
	}
	return errors.Join(errs...)
}

// flushPartition fsyncs one partition's unsynced data if due and writes its producer
// snapshot if due. A partition whose log is not open has nothing unsynced.
func (b *Broker) flushPartition(p *partition, cfg *topicConfig, now int64) error {
	p.logMu.RLock()
	defer p.logMu.RUnlock()
	l := p.log
	if l == nil || p.deleted.Load() || p.group.Load() != nil {
		return nil // a raft group's log is made durable by the engine (SyncStorage)
	}
	defer b.snapshotProducers(p, l, false)
	next := l.NextOffset()
	if l.SyncedOffset() >= next {
		p.synced.Store(now)
		return nil
	}
	if cfg.relaxed && (now-p.synced.Load())/int64(time.Millisecond) < cfg.flushMs {
		return nil
	}
	return p.sync(l, next, b.cfg.Now)
}

// sync fsyncs l (the partition's log when the caller read it) up to upTo. If l was closed
// meanwhile by a reopen, its Close fsynced everything, and the current log has it all.
func (p *partition) sync(l *wal.Log, upTo int64, now func() time.Time) error {
	err := l.Sync(upTo)
	if errors.Is(err, wal.ErrClosed) && !p.deleted.Load() {
		p.logMu.RLock()
		cur := p.log
		p.logMu.RUnlock()
		if cur != nil && cur != l {
			err = cur.Sync(upTo)
		}
	}
	if err != nil {
		return err
	}
	p.synced.Store(now().UnixNano())
	return nil
}

// wake signals every fetch waiting on this partition.
func (p *partition) wake() {
	p.mu.Lock()
	for _, w := range p.waiters {
		select {
		case w <- struct{}{}:
		default:
		}
	}
	p.mu.Unlock()
}

func (p *partition) addWaiter(w chan struct{}) {
	p.mu.Lock()
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()
}

func (p *partition) removeWaiter(w chan struct{}) {
	p.mu.Lock()
	for i, x := range p.waiters {
		if x == w {
			last := len(p.waiters) - 1
			p.waiters[i] = p.waiters[last]
			p.waiters[last] = nil
			p.waiters = p.waiters[:last]
			break
		}
	}
	p.mu.Unlock()
}

// Stats are counters of a Broker since Open.
type Stats struct {
	Partitions      int64 // partitions of all topics now
	OpenLogs        int64 // partitions whose log is open now (the others cost no descriptor)
	ProduceRequests int64 // Produce and ProduceStaged calls
	// Fsyncs counts the commit journal's group commits: the fsyncs that make appends of
	// every partition durable.
	Fsyncs int64
	// CheckpointFsyncs counts partition files fsynced by the journal's background
	// checkpoints (each dirty partition once per checkpoint, not per produce).
	CheckpointFsyncs int64
	// FilesystemSyncs counts the checkpoints' syncs of the whole filesystem (syncfs: a
	// checkpoint of many partitions, wal.StoreOptions.SyncFSMinLogs).
	FilesystemSyncs int64
	OpenFiles       int // descriptors the journal and the partition logs hold now
	// Replicated partitions this broker leads (and serves), and those of them
	// under-replicated (fewer in-sync replicas than replicas; Kafka's
	// UnderReplicatedPartitions), as of the last replica check.
	ReplicaLeaders, UnderReplicated int64
	Raft                            replica.Stats // the raft engine's counters (zero without replication)
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	s := Stats{
		Partitions:      b.partitions.Load(),
		OpenLogs:        b.openLogs.Load(),
		ProduceRequests: b.produceReqs.Load(),
	}
	st := b.store.Stats()
	s.Fsyncs, s.CheckpointFsyncs, s.FilesystemSyncs, s.OpenFiles = st.Fsyncs, st.PartitionFsyncs, st.FilesystemSyncs, st.OpenFiles
	s.ReplicaLeaders, s.UnderReplicated = b.replLeaders.Load(), b.replUnder.Load()
	if r := b.repl.Load(); r != nil {
		s.Raft = r.eng.Stats()
	}
	return s
}
