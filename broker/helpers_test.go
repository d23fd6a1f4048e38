package broker

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rec is one test record.
type rec struct {
	ts    int64
	key   string
	value string
}

// encodeRecords writes v2 records (varint-length framed) with timestamps relative to baseTs.
func encodeRecords(baseTs int64, recs []rec) []byte {
	var out []byte
	for i, r := range recs {
		var body []byte
		body = append(body, 0) // attributes
		body = binary.AppendVarint(body, r.ts-baseTs)
		body = binary.AppendVarint(body, int64(i))
		if r.key == "" {
			body = binary.AppendVarint(body, -1)
		} else {
			body = binary.AppendVarint(body, int64(len(r.key)))
			body = append(body, r.key...)
		}
		body = binary.AppendVarint(body, int64(len(r.value)))
		body = append(body, r.value...)
		body = binary.AppendVarint(body, 0) // headers
		out = binary.AppendVarint(out, int64(len(body)))
		out = append(out, body...)
	}
	return out
}

// makeBatch builds a RecordBatch v2 with kmsg and a CRC-32C of our own. gzip: compress records.
func makeBatch(gz bool, recs ...rec) []byte {
	baseTs, maxTs := recs[0].ts, recs[0].ts
	for _, r := range recs {
		maxTs = max(maxTs, r.ts)
	}
	records := encodeRecords(baseTs, recs)
	var attrs int16
	if gz {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(records)
		w.Close()
		records = buf.Bytes()
		attrs = 1
	}
	rb := kmsg.RecordBatch{
		FirstOffset:     0,
		Length:          int32(49 + len(records)),
		Magic:           2,
		Attributes:      attrs,
		LastOffsetDelta: int32(len(recs) - 1),
		FirstTimestamp:  baseTs,
		MaxTimestamp:    maxTs,
		ProducerID:      -1,
		ProducerEpoch:   -1,
		FirstSequence:   -1,
		NumRecords:      int32(len(recs)),
		Records:         records,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// vals builds records "prefix0".. with timestamps ts, ts+1, ...
func vals(ts int64, values ...string) []rec {
	out := make([]rec, len(values))
	for i, v := range values {
		out[i] = rec{ts: ts + int64(i), value: v}
	}
	return out
}

// decodeBatches parses stored batches back (checking every CRC) into records with absolute
// offsets; uncompressed or gzip.
func decodeBatches(t testing.TB, data []byte) (offsets []int64, values []string) {
	t.Helper()
	for len(data) > 0 {
		var rb kmsg.RecordBatch
		if len(data) < 12 {
			t.Fatalf("trailing %d bytes", len(data))
		}
		size := int(binary.BigEndian.Uint32(data[8:])) + 12
		if err := rb.ReadFrom(data[:size]); err != nil {
			t.Fatalf("batch: %v", err)
		}
		if got := crc32.Checksum(data[21:size], crc32.MakeTable(crc32.Castagnoli)); uint32(rb.CRC) != got {
			t.Fatalf("stored batch at offset %d has a bad crc", rb.FirstOffset)
		}
		recs := rb.Records
		if rb.Attributes&7 == 1 {
			zr, err := gzip.NewReader(bytes.NewReader(recs))
			if err != nil {
				t.Fatalf("gzip: %v", err)
			}
			if recs, err = io.ReadAll(zr); err != nil {
				t.Fatalf("gzip: %v", err)
			}
		}
		for range rb.NumRecords {
			l, n := binary.Varint(recs)
			r := recs[n : n+int(l)]
			recs = recs[n+int(l):]
			_, n1 := binary.Varint(r[1:])
			od, n2 := binary.Varint(r[1+n1:])
			p := r[1+n1+n2:]
			kl, n3 := binary.Varint(p)
			p = p[n3:]
			if kl > 0 {
				p = p[kl:]
			}
			vl, n4 := binary.Varint(p)
			offsets = append(offsets, rb.FirstOffset+od)
			values = append(values, string(p[n4:n4+int(vl)]))
		}
		data = data[size:]
	}
	return offsets, values
}

// fakeClock is the injectable clock the tests move by hand (Now and Advance).
type fakeClock = clock.Fake

func newClock() *fakeClock { return clock.NewFake(time.Unix(1_700_000_000, 0)) }

type env struct {
	t     testing.TB
	fs    *waltest.CrashFS
	clock *fakeClock
	cfg   Config
	b     *Broker
}

// newEnv opens a broker on a CrashFS with background goroutines disabled (tests drive
// retention and flushing).
func newEnv(t testing.TB, mod ...func(*Config)) *env {
	t.Helper()
	e := &env{t: t, fs: waltest.NewCrashFS(), clock: newClock()}
	e.cfg = Config{
		Dir:                    "/data",
		DefaultPartitions:      1,
		FS:                     e.fs,
		Now:                    e.clock.Now,
		RetentionCheckInterval: -1,
		FlushInterval:          -1,
	}
	for _, m := range mod {
		m(&e.cfg)
	}
	e.open()
	t.Cleanup(func() { e.b.Close() })
	return e
}

// mustOpen opens a broker of cfg or fails the test.
func mustOpen(t testing.TB, cfg Config) *Broker {
	t.Helper()
	b, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return b
}

// newTopicEnv is newEnv with topic t of parts partitions created.
func newTopicEnv(t testing.TB, parts int32) *env {
	t.Helper()
	e := newEnv(t)
	e.create("t", parts, nil)
	return e
}

func (e *env) open() {
	e.t.Helper()
	e.b = mustOpen(e.t, e.cfg)
}

// restart closes and reopens the broker on the same filesystem.
func (e *env) restart() {
	e.t.Helper()
	if err := e.b.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	e.open()
}

// crash drops everything not fsynced (tearing unsynced tails with tear, if not nil) and reopens.
func (e *env) crash(tear *rand.Rand) {
	e.t.Helper()
	if tear != nil {
		e.fs.CrashTear(tear)
	} else {
		e.fs.Crash()
	}
	e.b.Close() // handles from before the crash fail; that is fine
	e.open()
}

func (e *env) create(name string, partitions int32, configs map[string]string) brokerop.CreateTopicResp {
	e.t.Helper()
	resp, err := e.b.CreateTopics(context.Background(), &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{
		{Name: name, NumPartitions: partitions, ReplicationFactor: -1, Configs: configs}}})
	if err != nil {
		e.t.Fatal(err)
	}
	if r := resp.Topics[0]; r.ErrorCode != 0 {
		e.t.Fatalf("create %s: code %d: %s", name, r.ErrorCode, r.ErrorMessage)
	}
	return resp.Topics[0]
}

// produceAll sends req and fails the test unless every partition is answered without error.
func (e *env) produceAll(req *brokerop.ProduceReq) *brokerop.ProduceResp {
	e.t.Helper()
	resp, err := e.b.Produce(context.Background(), req)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range resp.Partitions {
		if r.ErrorCode != 0 {
			e.t.Fatalf("partition %d: code %d", r.Partition, r.ErrorCode)
		}
	}
	return resp
}

func (e *env) produce(acks int16, topic string, part int32, records []byte) brokerop.ProducePartitionResp {
	e.t.Helper()
	resp, err := e.b.Produce(context.Background(), &brokerop.ProduceReq{Acks: acks, Partitions: []brokerop.ProducePartition{
		{Topic: topic, Partition: part, Records: records}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.Partitions[0]
}

func (e *env) mustProduce(acks int16, topic string, part int32, records []byte) int64 {
	e.t.Helper()
	r := e.produce(acks, topic, part, records)
	if r.ErrorCode != 0 {
		e.t.Fatalf("produce %s-%d: code %d: %s", topic, part, r.ErrorCode, r.ErrorMessage)
	}
	return r.BaseOffset
}

func (e *env) fetch(topic string, part int32, offset int64, maxBytes int32) brokerop.FetchPartitionResp {
	e.t.Helper()
	resp, err := e.b.Fetch(context.Background(), &brokerop.FetchReq{MaxBytes: 1 << 30, Partitions: []brokerop.FetchPartition{
		{Topic: topic, Partition: part, Offset: offset, MaxBytes: maxBytes}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.Partitions[0]
}

// readAll fetches a partition from offset to the end and decodes every record.
func (e *env) readAll(topic string, part int32, from int64) (offsets []int64, values []string) {
	e.t.Helper()
	for {
		r := e.fetch(topic, part, from, 1<<20)
		if r.ErrorCode != 0 {
			e.t.Fatalf("fetch %s-%d@%d: code %d", topic, part, from, r.ErrorCode)
		}
		if len(r.Records) == 0 {
			return offsets, values
		}
		o, v := decodeBatches(e.t, r.Records)
		for i := range o {
			if o[i] >= from {
				offsets = append(offsets, o[i])
				values = append(values, v[i])
			}
		}
		from = o[len(o)-1] + 1
	}
}

// partLog returns a partition's log, opening it if it is not open yet.
func (e *env) partLog(topic string, part int32) *wal.Log {
	e.t.Helper()
	p := e.b.lookup(topic, part)
	if p == nil {
		e.t.Fatalf("no partition %s-%d", topic, part)
	}
	l, err := e.b.useLog(p, true)
	p.logMu.RUnlock()
	if err != nil {
		e.t.Fatalf("open %s-%d: %v", topic, part, err)
	}
	return l
}

// crashAtOp makes hfs crash base at its at-th op from now (waltest.CrashAt; at < 0: never),
// tearing the unsynced writes with r where tear holds; it returns CrashAt's count of the ops.
func crashAtOp(hfs *waltest.HookFS, base *waltest.CrashFS, at int64, tear bool, r *rand.Rand) (ops func() int64) {
	hook, ops := waltest.CrashAt(at, func() {
		if tear {
			base.CrashTear(r)
		} else {
			base.Crash()
		}
	})
	hfs.SetBefore(hook)
	return ops
}

// fuzzSameBytes fuzzes decode: what it accepts is valid and encodes back to the very bytes it
// was decoded from.
func fuzzSameBytes[T any](f *testing.F, decode func([]byte) (T, error), encode func(T) []byte, valid func(T) bool) {
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decode(b)
		if err != nil {
			return
		}
		if re := encode(v); !valid(v) || string(re) != string(b) {
			t.Fatalf("decoded %+v from %x, re-encoded %x", v, b, re)
		}
	})
}

// notYet fails the test if ch already holds a value: what has not happened yet (said by what).
func notYet[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s: %+v", what, v)
	default:
	}
}

// enforceRetention runs b's retention and fails the test unless it removed segments (who names
// the broker in the message).
func enforceRetention(t *testing.T, b *Broker, who string) {
	t.Helper()
	if n, err := b.EnforceRetention(); err != nil || n == 0 {
		t.Fatalf("%s: retention removed %d segments (err %v), want some", who, n, err)
	}
}
