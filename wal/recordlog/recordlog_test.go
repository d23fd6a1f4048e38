package recordlog_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/meshkafka/meshkafka/wal/recordlog"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// strings is a Format whose records are non-empty strings (an empty payload never reaches
// Decode: a zero length is a bad frame).
var errEmpty = errors.New("empty record")

func strFormat() *recordlog.Format[string] {
	return &recordlog.Format[string]{
		Encode: func(b []byte, s string) []byte { return append(b, s...) },
		Decode: func(p []byte) (string, error) {
			if p[0] == '!' {
				return "", errEmpty // a payload the owner refuses
			}
			return string(p), nil
		},
		MaxPayload: 64,
	}
}

func opts(fs *waltest.CrashFS) recordlog.Options {
	return recordlog.Options{FS: fs, Dir: "/d", Name: "r.log", What: "test: log"}
}

func open(t *testing.T, f *recordlog.Format[string], o recordlog.Options) (*recordlog.Log[string], []string) {
	t.Helper()
	l, recs, err := recordlog.Open(f, o)
	if err != nil {
		t.Fatal(err)
	}
	return l, recs
}

// The frame layout of the package doc, spelled out in bytes.
func TestFrameLayout(t *testing.T) {
	got := strFormat().AppendFrame([]byte{0xff}, "abc")
	want := []byte{0xff, 0, 0, 0, 3, 0x36, 0x4b, 0x3f, 0xb7, 'a', 'b', 'c'} // CRC-32C("abc") = 0x364b3fb7
	if !bytes.Equal(got, want) {
		t.Fatalf("frame %x, want %x", got, want)
	}
}

// Appended records survive a crash (they were fsynced), in order, one write and one fsync
// an Append.
func TestAppendReopen(t *testing.T) {
	fs := waltest.NewCrashFS()
	f := strFormat()
	l, recs := open(t, f, opts(fs))
	if len(recs) != 0 || l.Size() != 0 {
		t.Fatalf("new log: %q, %d bytes", recs, l.Size())
	}
	fs.ResetStats()
	if err := l.Append("a", "bb", "ccc"); err != nil {
		t.Fatal(err)
	}
	if st := fs.Stats(); st.Syncs != 1 || st.BytesWritten != 3*8+6 {
		t.Fatalf("one append: %+v", st)
	}
	if err := l.Append(); err != nil || fs.Stats().Syncs != 1 {
		t.Fatalf("empty append: %v, %+v", err, fs.Stats())
	}
	if err := l.Append("d"); err != nil {
		t.Fatal(err)
	}
	if l.Size() != 4*8+7 || l.Records() != 4 {
		t.Fatalf("size %d, records %d", l.Size(), l.Records())
	}
	l.Close()
	fs.Crash()
	l, recs = open(t, f, opts(fs))
	defer l.Close()
	if !reflect.DeepEqual(recs, []string{"a", "bb", "ccc", "d"}) || l.Records() != 4 || l.Size() != 4*8+7 {
		t.Fatalf("after crash: %q, %d records, %d bytes", recs, l.Records(), l.Size())
	}
}

// A bad last frame, however it is cut or damaged, is a torn tail: Open drops it, cuts the
// file to the good prefix durably, and appends go on after it.
func TestTornTail(t *testing.T) {
	f := strFormat()
	good := f.AppendFrame(f.AppendFrame(nil, "one"), "two")
	last := f.AppendFrame(nil, "three")
	tails := map[string][]byte{"bad crc": append(bytes.Clone(last[:len(last)-1]), 'X'), "refused payload": f.AppendFrame(nil, "!x"),
		"too long": {0, 0, 0, 65, 0, 0, 0, 0}, "zero length": {0, 0, 0, 0, 0, 0, 0, 0}}
	for n := 1; n < len(last); n++ {
		tails[fmt.Sprintf("cut at %d", n)] = last[:n]
	}
	for name, tail := range tails {
		t.Run(name, func(t *testing.T) {
			fs := waltest.NewCrashFS()
			fs.MkdirAll("/d", 0o755)
			if err := fs.WriteFile("/d/r.log", append(bytes.Clone(good), tail...)); err != nil {
				t.Fatal(err)
			}
			l, recs := open(t, f, opts(fs))
			if !reflect.DeepEqual(recs, []string{"one", "two"}) || l.Size() != int64(len(good)) {
				t.Fatalf("records %q, size %d", recs, l.Size())
			}
			if err := l.Append("four"); err != nil {
				t.Fatal(err)
			}
			l.Close()
			fs.Crash()
			_, recs = open(t, f, opts(fs))
			if !reflect.DeepEqual(recs, []string{"one", "two", "four"}) {
				t.Fatalf("after the cut and an append: %q", recs)
			}
		})
	}
}

// A bad frame with a good one after it is damage: Open refuses the log with the Format's
// error (or ErrDamaged) and leaves the file as it was.
func TestDamageRefused(t *testing.T) {
	errMine := errors.New("mine: damaged")
	for _, damaged := range []error{nil, errMine} {
		fs := waltest.NewCrashFS()
		f := strFormat()
		f.Damaged = damaged
		l, _ := open(t, f, opts(fs))
		if err := l.Append("one", "two", "three"); err != nil {
			t.Fatal(err)
		}
		l.Close()
		if err := fs.FlipBit("/d/r.log", 8*9); err != nil { // the first payload's first byte
			t.Fatal(err)
		}
		before, _ := fs.ReadFile("/d/r.log")
		_, _, err := recordlog.Open(f, opts(fs))
		want := damaged
		if want == nil {
			want = recordlog.ErrDamaged
		}
		if !errors.Is(err, want) {
			t.Fatalf("damaged log (Damaged %v) opened: %v", damaged, err)
		}
		if after, _ := fs.ReadFile("/d/r.log"); !bytes.Equal(before, after) {
			t.Fatal("refusing a damaged log changed it")
		}
	}
}

// A failed write or fsync answers an error and cuts the file back: the next Append goes
// where the failed one would have, and nothing of the failed one is replayed.
func TestAppendFailureCutsBack(t *testing.T) {
	fs := waltest.NewCrashFS()
	f := strFormat()
	l, _ := open(t, f, opts(fs))
	if err := l.Append("kept"); err != nil {
		t.Fatal(err)
	}
	fail := errors.New("injected")
	fs.SetSyncError(fail)
	if err := l.Append("lost"); !errors.Is(err, fail) {
		t.Fatalf("append with a failing fsync: %v", err)
	}
	fs.SetSyncError(nil)
	fs.SetWriteLimit(3) // a short write
	if err := l.Append("lost too"); err == nil {
		t.Fatal("append with a short write succeeded")
	}
	fs.SetWriteLimit(-1)
	if l.Size() != 12 || l.Records() != 1 {
		t.Fatalf("after failures: %d bytes, %d records", l.Size(), l.Records())
	}
	if b, _ := fs.ReadFile("/d/r.log"); len(b) != 12 {
		t.Fatalf("file not cut back: %d bytes", len(b))
	}
	if err := l.Append("next"); err != nil {
		t.Fatal(err)
	}
	l.Close()
	fs.Crash()
	_, recs := open(t, f, opts(fs))
	if !reflect.DeepEqual(recs, []string{"kept", "next"}) {
		t.Fatalf("after a crash: %q", recs)
	}
}

// MaybeCompact does nothing below CompactBytes (without asking for the state), rewrites a
// mostly superseded log as the state, and after finding the state is most of the log waits
// for another CompactBytes of growth. The rewrite survives a crash.
func TestMaybeCompact(t *testing.T) {
	fs := waltest.NewCrashFS()
	f := strFormat()
	o := opts(fs)
	o.CompactBytes = 100
	l, _ := open(t, f, o)
	asked := 0
	live := []string{"x"}
	state := func() []string { asked++; return live }
	for range 9 { // 9 frames of 9 bytes: below 100
		if err := l.Append("x"); err != nil {
			t.Fatal(err)
		}
		if err := l.MaybeCompact(state); err != nil {
			t.Fatal(err)
		}
	}
	if asked != 0 || l.Records() != 9 {
		t.Fatalf("below CompactBytes: state asked %d times, %d records", asked, l.Records())
	}
	// The live state is as many records as the log: no rewrite, and no new look before the
	// log has grown by another CompactBytes.
	live = []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"}
	for range 3 {
		l.Append("x")
		if err := l.MaybeCompact(state); err != nil {
			t.Fatal(err)
		}
	}
	if asked != 1 || l.Records() != 12 {
		t.Fatalf("mostly live: state asked %d times, %d records", asked, l.Records())
	}
	live = []string{"x", "y"}
	for l.Records() > 2 {
		l.Append("x")
		if err := l.MaybeCompact(state); err != nil {
			t.Fatal(err)
		}
		if l.Size() > 300 {
			t.Fatalf("never compacted: %d bytes, state asked %d times", l.Size(), asked)
		}
	}
	if asked != 2 || l.Size() != 18 {
		t.Fatalf("compaction: state asked %d times, %d bytes", asked, l.Size())
	}
	if err := l.Append("z"); err != nil {
		t.Fatal(err)
	}
	l.Close()
	fs.Crash()
	_, recs := open(t, f, o)
	if !reflect.DeepEqual(recs, []string{"x", "y", "z"}) {
		t.Fatalf("after compaction and a crash: %q", recs)
	}
	if _, err := fs.ReadFile("/d/r.log.tmp"); err == nil {
		t.Fatal("temporary file left")
	}
}

// A zero CompactBytes never compacts.
func TestNoCompactBytes(t *testing.T) {
	fs := waltest.NewCrashFS()
	l, _ := open(t, strFormat(), opts(fs))
	for range 50 {
		l.Append("x")
		if err := l.MaybeCompact(func() []string { t.Fatal("state asked"); return nil }); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzDecodeLog: DecodeLog never panics; its good prefix decodes again to the same records
// and re-frames to the same bytes.
func FuzzDecodeLog(f *testing.F) {
	format := strFormat()
	good := format.AppendFrame(format.AppendFrame(nil, "one"), "two")
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(append(bytes.Clone(good[1:]), good...))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, n, err := format.DecodeLog(b)
		if err != nil {
			if !errors.Is(err, recordlog.ErrDamaged) {
				t.Fatalf("error %v is not ErrDamaged", err)
			}
			return
		}
		if n > int64(len(b)) {
			t.Fatalf("good prefix %d of %d bytes", n, len(b))
		}
		var again []byte
		for _, r := range recs {
			again = format.AppendFrame(again, r)
		}
		if !bytes.Equal(again, b[:n]) {
			t.Fatal("the good prefix does not re-frame to itself")
		}
	})
}
