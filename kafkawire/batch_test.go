package kafkawire

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// kmsgBatch encodes a one-record batch with kmsg (an independent encoder) and the given
// attributes.
func kmsgBatch(attrs int16) []byte {
	rec := kmsg.Record{Value: []byte("v")}
	recBytes := rec.AppendTo(nil)
	b := kmsg.RecordBatch{Magic: 2, Attributes: attrs, ProducerID: 7, ProducerEpoch: 1, NumRecords: 1, Records: recBytes}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	return raw
}

func TestHasTransactionalBatch(t *testing.T) {
	plain, txn, control := kmsgBatch(0), kmsgBatch(0x10), kmsgBatch(0x30)
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	legacy := legacyMessage(0, 1, 0x10, 5, nil, []byte("v")) // magic 1: attribute 0x10 is not transactional
	cases := []struct {
		name string
		in   []byte
		want bool
	}{
		{"nil", nil, false},
		{"plain", plain, false},
		{"transactional", txn, true},
		{"control", control, true},
		{"second of two", cat(plain, txn), true},
		{"third of three", cat(plain, plain, txn), true},
		{"two plain", cat(plain, plain), false},
		{"transactional cut after its attributes", txn[:batchHeaderPrefix], true},
		{"plain then a cut header", cat(plain, txn[:batchHeaderPrefix-1]), false},
		{"legacy message", legacy, false},
		{"AppendRecordBatch", AppendRecordBatch(nil, []BatchRecord{{Value: []byte("x")}}), false},
	}
	for _, c := range cases {
		if got := HasTransactionalBatch(c.in); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// A first batch whose length runs past the end stops the walk (no panic, no skip into
	// the middle of the data).
	bad := cat(plain, txn)
	binary.BigEndian.PutUint32(bad[8:], uint32(len(bad)))
	if HasTransactionalBatch(bad) {
		t.Errorf("length past the end: true")
	}
}

// FuzzHasTransactionalBatch: never panics, and agrees with a walk of the same data that
// kmsg.RecordBatch.ReadFrom decodes batch by batch, wherever that walk decodes everything.
func FuzzHasTransactionalBatch(f *testing.F) {
	f.Add(kmsgBatch(0))
	f.Add(kmsgBatch(0x10))
	f.Add(append(kmsgBatch(0), kmsgBatch(0x10)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		got := HasTransactionalBatch(in)
		want, rest := false, in
		for len(rest) > 0 {
			var b kmsg.RecordBatch
			if len(rest) < 12 {
				return // kmsg's walk cannot decide
			}
			n := int64(int32(binary.BigEndian.Uint32(rest[8:])))
			if n < batchHeaderPrefix-12 || n > int64(len(rest))-12 {
				return
			}
			if err := b.ReadFrom(rest[:12+n]); err != nil {
				return
			}
			if b.Magic == 2 && b.Attributes&0x10 != 0 {
				want = true
			}
			rest = rest[12+n:]
		}
		if got != want {
			t.Fatalf("HasTransactionalBatch = %v, kmsg walk says %v", got, want)
		}
	})
}
