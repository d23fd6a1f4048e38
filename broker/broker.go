package broker

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	Now           func() time.Time // nil → time.Now (retention, flush.ms)
	Logger        *slog.Logger     // nil → discard
	Registry      Registry         // nil → FileRegistry at Dir/topics.registry
	Rand          io.Reader        // topic and cluster ids; nil → crypto/rand
	// OnStop, if set, is called once (from the failing op's goroutine; it must not block) when
	// the broker stops because a write's outcome is unknown (see Err): a binary exits on it.
	OnStop func(err error)
	// Store tunes the node-wide commit journal under Dir/commitlog that every partition log
	// writes through (FS and Logger are the broker's). The zero value is the default.
	Store wal.StoreOptions
}

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

	pids producerIDs // InitProducerID's durable counter (producer_ids.go)

	fatal atomic.Pointer[error] // set once by stop: a durable write's outcome is unknown (registry.go)
}

// topic is one topic. name, id and dir never change; parts and cfg are replaced atomically
// under the broker's adminMu.
type topic struct {
	name  string
	id    TopicID
	dir   string
	parts atomic.Pointer[[]*partition]
	cfg   atomic.Pointer[topicConfig]
}

// partition is one partition's log plus the fetch long-poll waiters.
type partition struct {
	t     *topic
	index int32
	dir   string

	// logMu is held for reading around every use of log and for writing to replace it (a
	// segment.bytes change reopens the log) or to close it. fsyncs of a produce run
	// without it; see sync.
	logMu sync.RWMutex
	log   *wal.Log

	deleted atomic.Bool  // set before the log is removed
	synced  atomic.Int64 // Now() in ns of the last fsync that caught up (flush.ms)

	mu      sync.Mutex      // guards waiters
	waiters []chan struct{} // fetches waiting for data: each gets a non-blocking send

	producers producerState // idempotent producers' sequence state (producer_state.go)
}

// Open opens (or creates) a broker's data directory: loads the topic registry, opens every
// partition log (recovering torn tails), purges data of topics no longer registered (a delete
// interrupted by a crash) and starts the background goroutine.
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
	}
	if err := mkdirDurable(b.fs, b.topicsDir); err != nil { // Dir and topics, and their entries
		return nil, fmt.Errorf("broker: %w", err)
	}
	sopts := cfg.Store
	sopts.FS, sopts.Logger = b.fs, cfg.Logger
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
			b.closeTopics(topics)
			return nil, fmt.Errorf("broker: registry: topic %q: %w", rec.Name, err)
		}
		t := b.newTopic(rec.Name, rec.ID, cfgs)
		parts, err := b.openPartitions(t, 0, rec.Partitions)
		if err != nil {
			b.closeTopics(topics)
			return nil, err
		}
		t.parts.Store(&parts)
		topics[t.name] = t
	}
	// A registered topic whose directory a crash lost was just created again: make its
	// entry durable before anything is acknowledged in it.
	if err := b.fs.SyncDir(b.topicsDir); err != nil {
		b.closeTopics(topics)
		return nil, fmt.Errorf("broker: %w", err)
	}
	b.topics.Store(&topics)
	b.purgeUnregistered(topics)
	b.wg.Add(1)
	go b.run()
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

// openPartitions opens partition logs [from, to) of t.
func (b *Broker) openPartitions(t *topic, from, to int32) ([]*partition, error) {
	cfg := t.cfg.Load()
	var parts []*partition
	for i := from; i < to; i++ {
		dir := filepath.Join(t.dir, strconv.Itoa(int(i)))
		l, err := b.openLog(dir, cfg.segmentBytes)
		if err != nil {
			for _, p := range parts {
				p.log.Close()
			}
			return nil, fmt.Errorf("broker: open %s-%d: %w", t.name, i, err)
		}
		p := &partition{t: t, index: i, dir: dir, log: l}
		p.synced.Store(b.cfg.Now().UnixNano())
		parts = append(parts, p)
	}
	return parts, nil
}

// openLog opens a partition log as a member of the broker's commit journal: its appends are
// made durable by the journal's group commit, shared by every partition (see package wal).
func (b *Broker) openLog(dir string, segmentBytes int64) (*wal.Log, error) {
	return b.store.OpenLog(dir, wal.Options{SegmentBytes: segmentBytes, Now: b.cfg.Now, Stamp: stampOffsets})
}

// reopenLocked reopens a topic's partition logs so that a changed segment.bytes applies from
// the next segment on (as in Kafka). Ops in flight finish on the old log first; a produce's
// fsync that meets the closed old log is satisfied by Close's own fsync (see sync).
// Callers hold adminMu.
func (b *Broker) reopenLocked(t *topic, segmentBytes int64) {
	for _, p := range *t.parts.Load() {
		p.logMu.Lock()
		if err := p.log.Close(); err != nil {
			b.log.Warn("broker: close log for reopen", "topic", t.name, "partition", p.index, "err", err)
		}
		l, err := b.openLog(p.dir, segmentBytes)
		if err != nil {
			// The partition stays on its closed log: ops answer KAFKA_STORAGE_ERROR until
			// the next successful reopen or restart.
			b.log.Error("broker: reopen log", "topic", t.name, "partition", p.index, "err", err)
		} else {
			p.log = l
		}
		p.logMu.Unlock()
	}
}

// closeTopics closes the logs of topics opened so far and the journal (a failed Open).
func (b *Broker) closeTopics(topics map[string]*topic) {
	for _, t := range topics {
		for _, p := range *t.parts.Load() {
			p.log.Close()
		}
	}
	b.store.Close()
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
		b.closed.Store(true)
		close(b.closing)
		b.wg.Wait()
		b.adminMu.Lock()
		defer b.adminMu.Unlock()
		var errs []error
		for _, t := range *b.topics.Load() {
			for _, p := range *t.parts.Load() {
				p.logMu.Lock()
				if err := p.log.Close(); err != nil {
					errs = append(errs, err)
				} else {
					b.snapshotProducers(p, p.log, true) // the log is closed and fully synced
				}
				p.logMu.Unlock()
			}
		}
		if err := b.store.Close(); err != nil {
			errs = append(errs, err)
		}
		b.closeErr = errors.Join(errs...)
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
	for {
		select {
		case <-b.closing:
			return
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
			p.logMu.RLock()
			n, err := p.log.Retain(cfg.retentionMs, cfg.retentionBytes)
			start := p.log.StartOffset()
			p.logMu.RUnlock()
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
			p.logMu.RLock()
			b.snapshotProducers(p, p.log, false)
			p.logMu.RUnlock()
		}
	}
	return errors.Join(errs...)
}

func (b *Broker) flushPartition(p *partition, cfg *topicConfig, now int64) error {
	p.logMu.RLock()
	defer p.logMu.RUnlock()
	next := p.log.NextOffset()
	if p.deleted.Load() || p.log.SyncedOffset() >= next {
		p.synced.Store(now)
		return nil
	}
	if cfg.relaxed && (now-p.synced.Load())/int64(time.Millisecond) < cfg.flushMs {
		return nil
	}
	return p.sync(p.log, next, b.cfg.Now)
}

// sync fsyncs l (the partition's log when the caller read it) up to upTo. If l was closed
// meanwhile by a reopen, its Close fsynced everything, and the current log has it all.
func (p *partition) sync(l *wal.Log, upTo int64, now func() time.Time) error {
	err := l.Sync(upTo)
	if errors.Is(err, wal.ErrClosed) && !p.deleted.Load() {
		p.logMu.RLock()
		cur := p.log
		p.logMu.RUnlock()
		if cur != l {
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
