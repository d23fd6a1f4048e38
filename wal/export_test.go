package wal

// Test seams for the external test package.

// EncodeEntryForTest returns the framed bytes of one entry.
func EncodeEntryForTest(data []byte, baseOffset int64, count int32, maxTimestamp int64) []byte {
	return appendEntry(nil, data, baseOffset, count, maxTimestamp)
}

// EncodeTaggedEntryForTest returns the framed bytes of one tagged entry (format version 2).
func EncodeTaggedEntryForTest(data []byte, baseOffset int64, count int32, maxTimestamp int64, tag uint64) []byte {
	return appendEntryTagged(nil, data, baseOffset, count, maxTimestamp, tag)
}

// EncodeHoleForTest returns the framed bytes of a hole (format version 3) of count offsets.
func EncodeHoleForTest(baseOffset int64, count int32) []byte {
	return appendHole(nil, baseOffset, count)
}

// HoleForTest reports whether b starts with a whole valid hole, and its base offset, count
// and framed size.
func HoleForTest(b []byte) (baseOffset int64, count int32, size int, ok bool) {
	h, err := decodeEntry(b)
	if err != nil || !h.isHole() {
		return 0, 0, 0, false
	}
	return h.baseOffset, h.count, int(h.size()), true
}

// DecodeEntryForTest decodes and verifies the entry at the start of b.
func DecodeEntryForTest(b []byte) (baseOffset int64, count int32, maxTimestamp int64, size int64, err error) {
	h, err := decodeEntry(b)
	return h.baseOffset, h.count, h.maxTimestamp, h.size(), err
}

const HeaderSizeForTest = headerSize

// EncodeJournalRecordForTest returns the framed bytes of one journal record.
func EncodeJournalRecordForTest(synced int64, name string, data []byte, base int64, count int32, maxTs int64) []byte {
	return appendJournalRecord(nil, synced, name, data, base, count, maxTs)
}

// EncodeJournalRecordV1ForTest returns the framed bytes of one entry record as version 1
// (releases before segment recycling) wrote it.
func EncodeJournalRecordV1ForTest(synced int64, name string, data []byte, base int64) []byte {
	r := journalRecord{kind: journalKindEntry, version: journalVersionV1, synced: synced, name: name, base: base, count: 1, maxTs: base, data: data}
	return encodeJournalRecord(nil, &r)
}
