// Package recordlogtest holds test helpers for the owners of a wal/recordlog log.
package recordlogtest

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path"
	"reflect"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/recordlog"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// OpensOldLog checks that fixture, a log file written by an earlier version of an owner's
// store (kept in the owner's testdata), still opens through open as the file name with the
// records want, without being changed; that format frames want to the same bytes; and that a
// torn frame after it is cut back to those bytes.
func OpensOldLog[S io.Closer, R any](t testing.TB, fixture, name string, format *recordlog.Format[R], want []R,
	open func(wal.FS, string, *slog.Logger) (S, []R, error)) {
	t.Helper()
	old, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	var again []byte
	for _, r := range want {
		again = format.AppendFrame(again, r)
	}
	if !bytes.Equal(again, old) {
		t.Fatalf("the records frame to\n%x\nthe old log is\n%x", again, old)
	}
	last := format.AppendFrame(nil, want[len(want)-1])
	for _, tail := range [][]byte{nil, last[:len(last)/2]} {
		fs := waltest.NewCrashFS()
		file := path.Join("/old", name)
		if err := fs.MkdirAll("/old", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := fs.WriteFile(file, append(bytes.Clone(old), tail...)); err != nil {
			t.Fatal(err)
		}
		st, got, err := open(fs, "/old", nil)
		if err != nil {
			t.Fatalf("opening the old log (torn tail of %d bytes): %v", len(tail), err)
		}
		st.Close()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("records of the old log (torn tail of %d bytes):\n%+v\nwant\n%+v", len(tail), got, want)
		}
		if now, _ := fs.ReadFile(file); !bytes.Equal(now, old) {
			t.Fatalf("the old log (torn tail of %d bytes) is %x after opening, want %x", len(tail), now, old)
		}
	}
}
