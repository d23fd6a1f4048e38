package wal_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// TestStoreReplaysVersion1Journal: a journal written by a release before version 2, whose
// records after a roll carry a synced position below their segment's base (earlier releases
// stamped records appended during a commit with the position durable before it), replays in
// full: the leftover rule applies to version-2 records only.
func TestStoreReplaysVersion1Journal(t *testing.T) {
	fs := waltest.NewCrashFS()
	const root = "/data"
	name := "topics/t/0"
	var seg0, seg1 []byte
	v1 := func(dst []byte, synced, base int64, data []byte) []byte {
		return append(dst, wal.EncodeJournalRecordV1ForTest(synced, name, data, base)...)
	}
	seg0 = v1(seg0, 0, 0, []byte("zero"))
	seg0 = v1(seg0, 0, 1, []byte("one"))
	// Rolled at len(seg0); the next records were appended while that commit ran.
	seg1 = v1(seg1, int64(len(seg0))-10, 2, []byte("two"))
	seg1 = v1(seg1, int64(len(seg0))-10, 3, []byte("three"))
	journal := func(base int) string { return filepath.Join(root, "commitlog", fmt.Sprintf("%020d.journal", base)) }
	if err := fs.MkdirAll(filepath.Join(root, "commitlog"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := fs.WriteFile(journal(0), seg0); err != nil {
		t.Fatal(err)
	}
	if err := fs.WriteFile(journal(len(seg0)), seg1); err != nil {
		t.Fatal(err)
	}
	s, err := wal.OpenStore(root, wal.StoreOptions{FS: fs, CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := s.OpenLog(filepath.Join(root, name), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	want := []string{"zero", "one", "two", "three"}
	if l.NextOffset() != int64(len(want)) {
		t.Fatalf("log ends at %d, want %d", l.NextOffset(), len(want))
	}
	for i, w := range want {
		bs, err := l.Read(int64(i), 1<<20)
		if err != nil || len(bs) == 0 || !bytes.Equal(bs[0].Data, []byte(w)) {
			t.Fatalf("offset %d: %v %v, want %q", i, bs, err, w)
		}
	}
}
