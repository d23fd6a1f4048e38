package broker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"

	"github.com/meshkafka/meshkafka/wal"
)

// Small metadata files (the topic registry, SCRAM credentials, ACLs) share one format and one
// way of being replaced: a header line "<magic> crc32c=<8 hex digits> len=<n>\n" and n bytes
// of JSON body, written to a temp file, fsynced, renamed over the old one, and the directory
// fsynced. jsonMetaFile is their Load and Store.

// jsonMetaFile is the Load and Store of one JSON value of type T in a metadata file.
type jsonMetaFile[T any] struct {
	what      string      // named in errors: "broker: <what>: …"
	magic     string      // the header's first word(s)
	perm      fs.FileMode // of a new file
	failedErr error       // wrapped by the sticky error after a write of unknown outcome
	// decode decodes a whole file (header included); it may validate the value.
	decode func(buf []byte) (T, error)
}

// load returns the value in path (the zero T when there is no file).
func (j *jsonMetaFile[T]) load(fsys wal.FS, path string) (T, error) {
	var zero T
	buf, err := readMetaFile(fsys, path)
	if err != nil {
		return zero, fmt.Errorf("broker: %s: %w", j.what, err)
	}
	if buf == nil {
		return zero, nil
	}
	v, err := j.decode(buf)
	if err != nil {
		return zero, fmt.Errorf("broker: %s %s: %w", j.what, path, err)
	}
	return v, nil
}

// store makes v the value in path. *failed is the store's sticky error: once a write's
// outcome is unknown, it is set (wrapping failedErr) and every later store returns it.
func (j *jsonMetaFile[T]) store(fsys wal.FS, path string, failed *error, v T) error {
	if *failed != nil {
		return *failed
	}
	data, err := encodeJSONMeta(j.magic, v)
	if err != nil {
		return fmt.Errorf("broker: %s: %w", j.what, err)
	}
	unknown, err := replaceMetaFile(fsys, path, j.perm, data)
	if unknown {
		*failed = fmt.Errorf("%w: %w", j.failedErr, err)
		return *failed
	}
	if err != nil {
		return fmt.Errorf("broker: %s: %w", j.what, err)
	}
	return nil
}

// encodeJSONMeta is a metadata file holding v as indented JSON.
func encodeJSONMeta(magic string, v any) ([]byte, error) {
	body, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return nil, err
	}
	return metaFile(magic, body), nil
}

// decodeJSONMeta checks a metadata file's header and checksum and decodes its JSON body.
func decodeJSONMeta[T any](buf []byte, magic string) (T, error) {
	var v T
	body, err := metaBody(buf, magic)
	if err != nil {
		return v, err
	}
	err = json.Unmarshal(body, &v)
	return v, err
}

// readMetaFile returns the content of path (nil, nil when there is none).
func readMetaFile(fsys wal.FS, path string) ([]byte, error) {
	_ = fsys.Remove(path + ".tmp")
	buf, err := wal.ReadFile(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return buf, nil
}

// metaBody checks a file's header and checksum and returns its body.
func metaBody(buf []byte, magic string) ([]byte, error) {
	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		return nil, errors.New("no header line")
	}
	var sum uint32
	var n int
	if _, err := fmt.Sscanf(string(buf[:nl]), magic+" crc32c=%08x len=%d", &sum, &n); err != nil {
		return nil, fmt.Errorf("bad header %q", buf[:nl])
	}
	body := buf[nl+1:]
	if len(body) != n {
		return nil, fmt.Errorf("body is %d bytes, header says %d", len(body), n)
	}
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, fmt.Errorf("checksum mismatch (stored %08x, computed %08x)", sum, got)
	}
	return body, nil
}

func metaFile(magic string, body []byte) []byte {
	hdr := fmt.Sprintf("%s crc32c=%08x len=%d\n", magic, crc32.Checksum(body, castagnoli), len(body))
	return append([]byte(hdr), body...)
}

// replaceMetaFile makes data the content of path (wal.ReplaceFileMode). A failed rename or
// directory fsync is an unknown outcome (unknown true): the caller must refuse later writes.
func replaceMetaFile(fsys wal.FS, path string, perm fs.FileMode, data []byte) (unknown bool, err error) {
	f, err := wal.ReplaceFileMode(fsys, filepath.Dir(path), filepath.Base(path), data, perm)
	if err != nil {
		return errors.Is(err, wal.ErrReplaceUnknown), err
	}
	f.Close() // the content is durable in place: a failed close of the new file changes nothing
	return false, nil
}
