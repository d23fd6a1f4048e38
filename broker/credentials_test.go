package broker

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/internal/brokertest"
	"github.com/meshkafka/meshkafka/internal/scramkey"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

func upsert(t testing.TB, name string, m scramkey.Mechanism, pass string) brokerop.ScramUpsertion {
	salt := []byte("salt-of-" + name)
	salted, err := scramkey.Salted(m, pass, salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	return brokerop.ScramUpsertion{Name: name, Mechanism: int8(m), Iterations: 4096, Salt: salt, SaltedPassword: salted}
}

// Credentials survive a crash once AlterUserScramCredentials answered, hold the derived keys
// (the password checks out, and is not in the file), and deletions are durable too.
func TestCredentialsDurable(t *testing.T) {
	fs := newDataFS()
	store := &FileCredentialStore{FS: fs, Path: "data/scram.credentials"}
	c, err := OpenCredentials(store)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	resp, _ := c.AlterUserScramCredentials(ctx, &brokerop.AlterUserScramCredentialsReq{Upsertions: []brokerop.ScramUpsertion{
		upsert(t, "alice", scramkey.SHA256, "pw-a"), upsert(t, "alice", scramkey.SHA512, "pw-a"), upsert(t, "bob", scramkey.SHA256, "pw-b"),
	}})
	if len(resp.Results) != 2 || resp.Results[0].ErrorCode != 0 || resp.Results[1].ErrorCode != 0 {
		t.Fatalf("alter: %+v", resp)
	}
	resp, _ = c.AlterUserScramCredentials(ctx, &brokerop.AlterUserScramCredentialsReq{Deletions: []brokerop.ScramDeletion{{Name: "bob", Mechanism: 1}}})
	if resp.Results[0].ErrorCode != 0 {
		t.Fatalf("delete: %+v", resp)
	}
	raw, _ := fs.ReadFile("data/scram.credentials")
	if strings.Contains(string(raw), "pw-a") {
		t.Fatal("password stored")
	}
	fs.Crash()
	c, err = OpenCredentials(&FileCredentialStore{FS: fs, Path: "data/scram.credentials"})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := c.DescribeUserScramCredentials(ctx, &brokerop.DescribeUserScramCredentialsReq{})
	if len(d.Users) != 1 || d.Users[0].Name != "alice" || len(d.Users[0].Credentials) != 2 {
		t.Fatalf("after crash: %+v", d)
	}
	for _, cr := range d.Users[0].Credentials {
		k := scramkey.Credential{Mechanism: scramkey.Mechanism(cr.Mechanism), Iterations: cr.Iterations, Salt: cr.Salt, StoredKey: cr.StoredKey}
		if !scramkey.Check(k, "pw-a") || scramkey.Check(k, "pw-b") {
			t.Fatalf("credential %d does not check the password", cr.Mechanism)
		}
	}
	d, _ = c.DescribeUserScramCredentials(ctx, &brokerop.DescribeUserScramCredentialsReq{Users: []string{"bob", "alice", "alice"}})
	if d.Users[0].ErrorCode != kerr.ResourceNotFound.Code || d.Users[1].ErrorCode != kerr.DuplicateResource.Code {
		t.Fatalf("describe errors: %+v", d)
	}
}

// A failed write (fsync error) answers an error for the users and changes nothing, in memory
// or on disk; a corrupted file is refused, not read as "no users".
func TestCredentialsWriteFailureAndCorruption(t *testing.T) {
	fs := newDataFS()
	path := "data/scram.credentials"
	c, err := OpenCredentials(&FileCredentialStore{FS: fs, Path: path})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.AlterUserScramCredentials(ctx, &brokerop.AlterUserScramCredentialsReq{Upsertions: []brokerop.ScramUpsertion{upsert(t, "alice", scramkey.SHA256, "pw")}})
	fs.FailSyncs(1, syscall.EIO)
	resp, _ := c.AlterUserScramCredentials(ctx, &brokerop.AlterUserScramCredentialsReq{Upsertions: []brokerop.ScramUpsertion{upsert(t, "carol", scramkey.SHA256, "pw")}})
	if resp.Results[0].ErrorCode != kerr.UnknownServerError.Code || !strings.Contains(resp.Results[0].ErrorMessage, "Storing the credentials failed") {
		t.Fatalf("failed store answered %+v", resp)
	}
	if d, _ := c.DescribeUserScramCredentials(ctx, &brokerop.DescribeUserScramCredentialsReq{}); len(d.Users) != 1 {
		t.Fatalf("memory changed by a failed store: %+v", d)
	}
	refusesCorrupted(t, fs, path, 8*60, func() error {
		_, err := OpenCredentials(&FileCredentialStore{FS: fs, Path: path})
		return err
	})
}

// newDataFS returns a crash FS with a durable directory data.
func newDataFS() *waltest.CrashFS {
	fs := waltest.NewCrashFS()
	fs.MkdirAll("data", 0o755)
	fs.SyncDir(".")
	return fs
}

// refusesCorrupted crashes fs, flips bit of the file at path, and checks that open then
// fails for the file's checksum (a corrupted file is refused, not read as empty).
func refusesCorrupted(t *testing.T, fs *waltest.CrashFS, path string, bit int64, open func() error) {
	t.Helper()
	fs.Crash()
	if err := fs.FlipBit(path, bit); err != nil {
		t.Fatal(err)
	}
	if err := open(); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("corrupted file %s opened: %v", path, err)
	}
}

// A failed rename is an unknown outcome: every later store fails.
type failRenameFS struct{ *waltest.CrashFS }

func (f failRenameFS) Rename(string, string) error { return syscall.EIO }

func TestCredentialsUnknownOutcomeIsSticky(t *testing.T) {
	cfs := waltest.NewCrashFS()
	cfs.MkdirAll("d", 0o755)
	store := &FileCredentialStore{FS: failRenameFS{cfs}, Path: "d/scram.credentials"}
	for range 2 {
		if err := store.Store(map[string][]brokerop.ScramCredential{}); !errors.Is(err, ErrCredentialsFailed) {
			t.Fatalf("store after failed rename: %v", err)
		}
	}
}

func FuzzDecodeCredentials(f *testing.F) {
	good, _ := encodeCredentials(map[string][]brokerop.ScramCredential{"alice": {{Mechanism: 1, Iterations: 4096, Salt: []byte("s"), StoredKey: []byte("k"), ServerKey: []byte("v")}}})
	f.Add(good)
	f.Add([]byte("meshkafka-scram v1 crc32c=00000000 len=2\n{}"))
	brokertest.FuzzReDecodes(f, DecodeCredentials, encodeCredentials, nil)
}
