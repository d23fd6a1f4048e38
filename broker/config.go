package broker

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// Topic configs. Each is honoured as described in doc.go; anything else is refused with
// INVALID_CONFIG so that a client never believes a setting took effect when it did not.
// Defaults and broker-level synonyms are Apache Kafka 3.x's.
type configDef struct {
	name    string
	typ     int8   // brokerop.ConfigType*
	def     string // Kafka's default
	synonym string // the broker-level config a topic falls back to
	doc     string
	check   func(v string) (string, error) // returns the normalised value
}

const maxLong = "9223372036854775807"

var topicConfigDefs = []configDef{
	{"cleanup.policy", brokerop.ConfigTypeList, "delete", "log.cleanup.policy",
		"\"delete\" deletes old segments by retention.ms and retention.bytes; \"compact\" keeps the latest record of every key (the log cleaner); \"compact,delete\" does both.", checkCleanupPolicy},
	{"compression.type", brokerop.ConfigTypeString, "producer", "compression.type",
		"Batches are stored exactly as produced, so only \"producer\" is supported.", checkOneOf("producer")},
	{"delete.retention.ms", brokerop.ConfigTypeLong, "86400000", "log.cleaner.delete.retention.ms",
		"How long the cleaner keeps a tombstone (and an emptied transaction marker) of a compacted topic after it first cleaned it.", checkLong(0)},
	{"flush.messages", brokerop.ConfigTypeLong, maxLong, "log.flush.interval.messages",
		"Setting this (or flush.ms) relaxes the broker's fsync-before-ack default for the topic: an fsync happens once this many messages are unsynced.", checkLong(1)},
	{"flush.ms", brokerop.ConfigTypeLong, maxLong, "log.flush.interval.ms",
		"Setting this (or flush.messages) relaxes the broker's fsync-before-ack default for the topic: unsynced data is fsynced by the background flusher once it is this old.", checkLong(0)},
	{"max.compaction.lag.ms", brokerop.ConfigTypeLong, maxLong, "log.cleaner.max.compaction.lag.ms",
		"A compacted partition is cleaned whatever its dirty ratio once its oldest uncleaned record (in a sealed segment) is this old.", checkLong(1)},
	{"max.message.bytes", brokerop.ConfigTypeInt, "1048588", "message.max.bytes",
		"The largest record batch size allowed (MESSAGE_TOO_LARGE above it).", checkInt(0)},
	{"message.timestamp.type", brokerop.ConfigTypeString, "CreateTime", "log.message.timestamp.type",
		"Only CreateTime is supported.", checkOneOf("CreateTime")},
	{"min.cleanable.dirty.ratio", brokerop.ConfigTypeDouble, "0.5", "log.cleaner.min.cleanable.ratio",
		"A compacted partition is cleaned once its uncleaned bytes are at least this share of its cleanable bytes.", checkDouble(0, 1)},
	{"min.compaction.lag.ms", brokerop.ConfigTypeLong, "0", "log.cleaner.min.compaction.lag.ms",
		"Segments whose newest record is younger than this are not compacted yet.", checkLong(0)},
	{"min.insync.replicas", brokerop.ConfigTypeInt, "1", "min.insync.replicas",
		"An acks=all produce is refused (NOT_ENOUGH_REPLICAS) when fewer replicas of the partition are in sync.", checkInt(1)},
	{"retention.bytes", brokerop.ConfigTypeLong, "-1", "log.retention.bytes",
		"Oldest whole segments are deleted while a partition exceeds this size (-1: no limit).", checkLong(math.MinInt64)},
	{"retention.ms", brokerop.ConfigTypeLong, "604800000", "log.retention.ms",
		"Whole segments whose newest record is older than this are deleted (-1: no limit).", checkLong(-1)},
	{"segment.bytes", brokerop.ConfigTypeInt, "1073741824", "log.segment.bytes",
		"The size at which a partition log rolls to a new segment file.", checkInt(14)},
}

func findConfigDef(name string) *configDef {
	for i := range topicConfigDefs {
		if topicConfigDefs[i].name == name {
			return &topicConfigDefs[i]
		}
	}
	return nil
}

func checkLong(min int64) func(string) (string, error) { return checkInteger(64, "LONG", min) }

func checkInt(min int64) func(string) (string, error) { return checkInteger(32, "INT", min) }

// checkInteger accepts a base-10 integer that fits in bits bits (Kafka's type typ) and is at
// least min, and normalises it.
func checkInteger(bits int, typ string, min int64) func(string) (string, error) {
	return func(v string) (string, error) {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, bits)
		if err != nil {
			return "", fmt.Errorf("not a number of type %s", typ)
		}
		if n < min {
			return "", fmt.Errorf("value must be at least %d", min)
		}
		return strconv.FormatInt(n, 10), nil
	}
}

func checkDouble(lo, hi float64) func(string) (string, error) {
	return func(v string) (string, error) {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) {
			return "", fmt.Errorf("not a number of type DOUBLE")
		}
		if f < lo || f > hi {
			return "", fmt.Errorf("value must be in [%g, %g]", lo, hi)
		}
		return strconv.FormatFloat(f, 'g', -1, 64), nil
	}
}

func checkOneOf(allowed ...string) func(string) (string, error) {
	return func(v string) (string, error) {
		v = strings.TrimSpace(v)
		if slices.Contains(allowed, v) {
			return v, nil
		}
		return "", fmt.Errorf("this broker supports only %s", strings.Join(allowed, ", "))
	}
}

func checkCleanupPolicy(v string) (string, error) {
	parts := splitList(v)
	if len(parts) == 0 {
		return "", fmt.Errorf("cleanup.policy must not be empty")
	}
	var compact, del bool
	for _, p := range parts {
		switch p {
		case "delete":
			del = true
		case "compact":
			compact = true
		default:
			return "", fmt.Errorf("string must be one of: compact, delete")
		}
	}
	switch {
	case compact && del:
		return "compact,delete", nil
	case compact:
		return "compact", nil
	}
	return "delete", nil
}

// policyCompacts reports whether a normalised cleanup.policy value includes compact.
func policyCompacts(v string) bool { return v == "compact" || v == "compact,delete" }

func splitList(v string) []string {
	var out []string
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// configError is a refused config: INVALID_CONFIG with Kafka's wording.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

// validateConfigs checks a set of config overrides and returns them normalised.
func validateConfigs(in map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(in))
	for name, v := range in {
		n, err := validateConfig(name, v)
		if err != nil {
			return nil, err
		}
		out[name] = n
	}
	return out, nil
}

func validateConfig(name, v string) (string, error) {
	d := findConfigDef(name)
	if d == nil {
		return "", &configError{fmt.Sprintf("Unknown topic config name: %s", name)}
	}
	n, err := d.check(v)
	if err != nil {
		return "", &configError{fmt.Sprintf("Invalid value %s for configuration %s: %v", v, name, err)}
	}
	return n, nil
}

// topicConfig is a topic's effective configuration, parsed once per change and read lock-free
// on the hot paths.
type topicConfig struct {
	overrides       map[string]string // the topic's own settings (DYNAMIC_TOPIC_CONFIG)
	retentionMs     int64
	retentionBytes  int64
	segmentBytes    int64
	maxMessageBytes int
	relaxed         bool  // flush.messages or flush.ms set: acks=all no longer implies fsync
	flushMessages   int64 // fsync once this many offsets are unsynced (relaxed only)
	flushMs         int64 // background fsync once unsynced data is this old (relaxed only)
	minInsync       int   // min.insync.replicas (acks=all)
	// cleanup.policy: compact runs the log cleaner (compact.go); deleteOld applies
	// retention.ms and retention.bytes.
	compact, deleteOld bool
	deleteRetentionMs  int64   // delete.retention.ms
	minCleanableRatio  float64 // min.cleanable.dirty.ratio
	minCompactionLagMs int64   // min.compaction.lag.ms
	maxCompactionLagMs int64   // max.compaction.lag.ms
}

// resolve builds the effective config of a topic from its overrides over the broker defaults.
func resolveConfig(overrides, brokerDefaults map[string]string) *topicConfig {
	get := func(name string) string {
		if v, ok := overrides[name]; ok {
			return v
		}
		if v, ok := brokerDefaults[name]; ok {
			return v
		}
		return findConfigDef(name).def
	}
	num := func(name string) int64 {
		n, _ := strconv.ParseInt(get(name), 10, 64) // validated before it got here
		return n
	}
	_, fm := overrides["flush.messages"]
	_, fms := overrides["flush.ms"]
	_, bfm := brokerDefaults["flush.messages"]
	_, bfms := brokerDefaults["flush.ms"]
	ratio, _ := strconv.ParseFloat(get("min.cleanable.dirty.ratio"), 64)
	policy := get("cleanup.policy")
	return &topicConfig{
		compact:            policyCompacts(policy),
		deleteOld:          policy != "compact",
		deleteRetentionMs:  num("delete.retention.ms"),
		minCleanableRatio:  ratio,
		minCompactionLagMs: num("min.compaction.lag.ms"),
		maxCompactionLagMs: num("max.compaction.lag.ms"),
		overrides:          overrides,
		retentionMs:        num("retention.ms"),
		retentionBytes:     num("retention.bytes"),
		segmentBytes:       num("segment.bytes"),
		maxMessageBytes:    int(num("max.message.bytes")),
		relaxed:            fm || fms || bfm || bfms,
		flushMessages:      num("flush.messages"),
		flushMs:            num("flush.ms"),
		minInsync:          int(num("min.insync.replicas")),
	}
}

// describeTopicConfigs renders a topic's configs as Kafka's DescribeConfigs does: every known
// config, with its value, source and (optionally) synonyms, sorted by name.
func describeTopicConfigs(overrides, brokerDefaults map[string]string, names []string, synonyms, docs bool) []brokerop.ConfigEntry {
	var out []brokerop.ConfigEntry
	for i := range topicConfigDefs {
		d := &topicConfigDefs[i]
		if len(names) > 0 && !slices.Contains(names, d.name) {
			continue
		}
		var chain []brokerop.ConfigSynonym
		if v, ok := overrides[d.name]; ok {
			chain = append(chain, brokerop.ConfigSynonym{Name: d.name, Value: ptr(v), Source: brokerop.SourceDynamicTopic})
		}
		if v, ok := brokerDefaults[d.name]; ok {
			chain = append(chain, brokerop.ConfigSynonym{Name: d.synonym, Value: ptr(v), Source: brokerop.SourceStaticBroker})
		}
		chain = append(chain, brokerop.ConfigSynonym{Name: d.synonym, Value: ptr(d.def), Source: brokerop.SourceDefault})
		e := brokerop.ConfigEntry{
			Name:       d.name,
			Value:      chain[0].Value,
			Source:     chain[0].Source,
			IsDefault:  chain[0].Source == brokerop.SourceDefault,
			ConfigType: d.typ,
		}
		if synonyms {
			e.Synonyms = chain
		}
		if docs {
			e.Documentation = d.doc
		}
		out = append(out, e)
	}
	return out
}

// Broker-level configs DescribeConfigs reports for a BROKER resource (read-only here).
func describeBrokerConfigs(b *Broker, names []string, docs bool) []brokerop.ConfigEntry {
	type bc struct {
		name, value, doc string
		typ              int8
		static           bool
	}
	list := []bc{
		{"auto.create.topics.enable", "true", "Topics are created on Metadata requests that allow it.", brokerop.ConfigTypeBoolean, false},
		{"broker.id", strconv.Itoa(int(b.cfg.NodeID)), "This broker's node id.", brokerop.ConfigTypeInt, true},
		{"default.replication.factor", "1", "Partitions have a single replica.", brokerop.ConfigTypeInt, false},
		{"num.partitions", strconv.Itoa(int(b.cfg.DefaultPartitions)), "Partitions of auto-created topics.", brokerop.ConfigTypeInt, b.cfg.DefaultPartitions != 1},
		{"log.cleaner.backoff.ms", strconv.FormatInt(backoffMs(b.cfg.CleanerBackoff), 10),
			"How often the log cleaner looks for compacted partitions to clean (-1: never by itself).", brokerop.ConfigTypeLong, b.cfg.CleanerBackoff != DefaultCleanerBackoff},
		{"log.cleaner.dedupe.buffer.size", strconv.FormatInt(b.cfg.CleanerDedupeBufferBytes, 10),
			"Bytes of the log cleaner's offset map (24 per key).", brokerop.ConfigTypeLong, b.cfg.CleanerDedupeBufferBytes != 128<<20},
		{"log.cleaner.io.max.bytes.per.second", cleanerRate(b.cfg.CleanerIOBytesPerSecond),
			"The log cleaner's reads and writes together, all partitions, at most this many bytes per second.", brokerop.ConfigTypeDouble, b.cfg.CleanerIOBytesPerSecond > 0},
	}
	for i := range topicConfigDefs {
		d := &topicConfigDefs[i]
		v, static := b.cfg.TopicDefaults[d.name]
		if !static {
			v = d.def
		}
		list = append(list, bc{d.synonym, v, d.doc, d.typ, static})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	var out []brokerop.ConfigEntry
	for _, c := range list {
		if len(names) > 0 && !slices.Contains(names, c.name) {
			continue
		}
		src := brokerop.SourceDefault
		if c.static {
			src = brokerop.SourceStaticBroker
		}
		e := brokerop.ConfigEntry{Name: c.name, Value: ptr(c.value), ReadOnly: true, Source: src,
			IsDefault: src == brokerop.SourceDefault, ConfigType: c.typ}
		if docs {
			e.Documentation = c.doc
		}
		out = append(out, e)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// cleanerRate renders log.cleaner.io.max.bytes.per.second (no limit: Kafka's default,
// Double.MAX_VALUE).
func cleanerRate(r float64) string {
	if r <= 0 {
		return "1.7976931348623157E308"
	}
	return strconv.FormatFloat(r, 'g', -1, 64)
}

// backoffMs renders log.cleaner.backoff.ms (-1: the cleaner never runs by itself).
func backoffMs(d time.Duration) int64 {
	if d < 0 {
		return -1
	}
	return d.Milliseconds()
}
