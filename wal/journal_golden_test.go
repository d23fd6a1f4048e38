package wal

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGoldenJournal pins the journal record layout of every kind (entry, remove, tagged
// entry, truncate, reset, state) and the state file's slot layout: the bytes must equal
// testdata/golden-journal byte for byte (UPDATE_GOLDEN=1 rewrites them after a deliberate
// format change) and decode back to the same records. records-v1.journal, the same records
// as version 1 wrote them (before segment recycling), must still decode to them.
func TestGoldenJournal(t *testing.T) {
	type rec struct {
		kind  uint8
		name  string
		tag   uint64
		data  []byte
		base  int64
		count int32
		maxTs int64
	}
	recs := []rec{
		{journalKindEntry, "topics/t/0", 0, []byte("entry"), 0, 2, 1_700_000_000_000},
		{journalKindTagged, "topics/t/1", 42, []byte("tagged entry"), 0, 3, 1_700_000_000_001},
		{journalKindTagged, "topics/t/1", 43, []byte("next"), 3, 1, 1_700_000_000_002},
		{journalKindTruncate, "topics/t/1", 0, nil, 3, 0, 0},
		{journalKindState, "topics/t/1", 0, []byte("hard state"), 0, 0, 0},
		{journalKindReset, "topics/t/1", 0, nil, 1000, 0, 0},
		{journalKindRemove, "topics/t/0", 0, nil, 0, 0, 0},
	}
	var journal []byte
	for _, r := range recs {
		journal = appendJournalRec(journal, r.kind, int64(len(journal)), r.name, r.tag, r.data, r.base, r.count, r.maxTs)
	}
	state := append(encodeStateSlot(1, []byte("first state")), make([]byte, stateSlotSize-stateHeaderSize-len("first state"))...)
	state = append(state, encodeStateSlot(2, []byte("second"))...)
	files := map[string][]byte{"records.journal": journal, "state": state}
	gdir := filepath.Join("testdata", "golden-journal")
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.MkdirAll(gdir, 0o755); err != nil {
			t.Fatal(err)
		}
		for n, b := range files {
			if err := os.WriteFile(filepath.Join(gdir, n), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for n, b := range files {
		g, err := os.ReadFile(filepath.Join(gdir, n))
		if err != nil {
			t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create)", err)
		}
		if !bytes.Equal(g, b) {
			t.Errorf("%s differs from the golden file:\n got %x\nwant %x", n, b, g)
		}
	}
	for file, version := range map[string]uint8{"records.journal": journalVersion, "records-v1.journal": journalVersionV1} {
		g, _ := os.ReadFile(filepath.Join(gdir, file))
		got, end, err := readJournal(g, 0, 0)
		if err != nil || end != int64(len(g)) || len(got) != len(recs) {
			t.Fatalf("golden journal %s: %d records to %d, %v", file, len(got), end, err)
		}
		for i, r := range recs {
			d := got[i]
			if d.kind != r.kind || d.name != r.name || d.tag != r.tag || !bytes.Equal(d.data, r.data) ||
				d.base != r.base || d.count != r.count || d.maxTs != r.maxTs || d.version != version {
				t.Fatalf("%s: record %d decodes as %+v, want %+v (version %d)", file, i, d, r, version)
			}
		}
	}
	gs, _ := os.ReadFile(filepath.Join(gdir, "state"))
	if seq, st := decodeStateFile(gs); seq != 2 || string(st) != "second" {
		t.Fatalf("golden state file decodes as %d %q", seq, st)
	}
}
