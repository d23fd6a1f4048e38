package coord

import (
	"testing"

	"github.com/meshkafka/meshkafka/broker/share"
)

// FuzzDecodeLog: DecodeLog never panics; the good prefix it reports decodes to the same
// records again.
func FuzzDecodeLog(f *testing.F) {
	var b []byte
	for _, r := range recs() {
		b = appendFrame(b, r)
	}
	f.Add(b)
	f.Add(b[:len(b)-1])
	f.Fuzz(func(t *testing.T, b []byte) {
		got, good, err := DecodeLog(b)
		if err != nil {
			return
		}
		again, n, err := DecodeLog(b[:good])
		if err != nil || n != good || len(again) != len(got) {
			t.Fatalf("prefix: %v %d/%d %d/%d", err, n, good, len(again), len(got))
		}
		m := share.NewMachine(share.Config{})
		for _, r := range got {
			m.Apply(r)
		}
	})
}
