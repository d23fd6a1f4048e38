package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/scramkey"
	"github.com/meshkafka/meshkafka/wal"
)

// CredentialStore keeps the SCRAM credentials durably: every user's stored credentials
// (salt, iterations, StoredKey, ServerKey; never a password). Store replaces the whole set
// and returns only once it is durable. FileCredentialStore keeps them in a file; the metadata
// quorum can implement this interface to keep them as cluster metadata.
type CredentialStore interface {
	// Load returns the stored users (nil and no error when nothing was ever stored).
	Load() (map[string][]brokerop.ScramCredential, error)
	// Store makes users the durable set.
	Store(users map[string][]brokerop.ScramCredential) error
}

// Credentials serves the SCRAM credential ops (brokerop.SecurityService) over a
// CredentialStore. Changes are applied in memory only after the store has them.
type Credentials struct {
	mu    sync.Mutex
	store CredentialStore
	users map[string][]brokerop.ScramCredential // guarded by mu; sorted by mechanism
}

// Credentials serves the SCRAM half of brokerop.SecurityService; Security (acls.go) is both halves.

// OpenCredentials loads the credentials of store.
func OpenCredentials(store CredentialStore) (*Credentials, error) {
	users, err := store.Load()
	if err != nil {
		return nil, err
	}
	if users == nil {
		users = map[string][]brokerop.ScramCredential{}
	}
	return &Credentials{store: store, users: users}, nil
}

// DescribeUserScramCredentials answers with the stored credentials, keys included (the
// gateway strips them from Kafka's API 50 answer).
func (c *Credentials) DescribeUserScramCredentials(_ context.Context, req *brokerop.DescribeUserScramCredentialsReq) (*brokerop.DescribeUserScramCredentialsResp, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := &brokerop.DescribeUserScramCredentialsResp{}
	if req.Users == nil {
		for _, name := range slices.Sorted(mapKeys(c.users)) {
			resp.Users = append(resp.Users, brokerop.ScramUser{Name: name, Credentials: cloneCreds(c.users[name])})
		}
		return resp, nil
	}
	seen := map[string]int{}
	for _, u := range req.Users {
		seen[u]++
	}
	for _, name := range req.Users {
		u := brokerop.ScramUser{Name: name}
		creds, ok := c.users[name]
		switch {
		case seen[name] > 1:
			u.ErrorCode, u.ErrorMessage = kerr.DuplicateResource.Code, "Cannot describe SCRAM credentials for the same user twice in a single request: "+name
		case !ok:
			u.ErrorCode, u.ErrorMessage = kerr.ResourceNotFound.Code, "Attempt to describe a user credential that does not exist: "+name
		default:
			u.Credentials = cloneCreds(creds)
		}
		resp.Users = append(resp.Users, u)
	}
	return resp, nil
}

// AlterUserScramCredentials applies deletions and upsertions with Kafka's per-user rules: a
// user whose any alteration is invalid (empty name, unknown mechanism, iterations outside
// 4096–16384, empty salt or salted password, the same user and mechanism twice, deleting a
// credential that does not exist) gets that error and none of its alterations applied; the
// others are stored together, durably, before the answer.
func (c *Credentials) AlterUserScramCredentials(_ context.Context, req *brokerop.AlterUserScramCredentialsReq) (*brokerop.AlterUserScramCredentialsResp, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	type key struct {
		name string
		mech int8
	}
	var order []string
	errs := map[string]*brokerop.ScramAlterResult{}
	fail := func(name string, code *kerr.Error, msg string) {
		if r := errs[name]; r.ErrorCode == 0 {
			r.ErrorCode, r.ErrorMessage = code.Code, msg
		}
	}
	note := func(name string) {
		if _, ok := errs[name]; !ok {
			order = append(order, name)
			errs[name] = &brokerop.ScramAlterResult{User: name}
		}
	}
	count := map[key]int{}
	for _, d := range req.Deletions {
		count[key{d.Name, d.Mechanism}]++
	}
	for _, u := range req.Upsertions {
		count[key{u.Name, u.Mechanism}]++
	}
	check := func(name string, mech int8) bool {
		note(name)
		switch {
		case name == "":
			fail(name, kerr.UnacceptableCredential, "Username must not be empty")
		case !scramkey.Mechanism(mech).Valid():
			fail(name, kerr.UnsupportedSaslMechanism, fmt.Sprintf("Unknown SCRAM mechanism %d", mech))
		case count[key{name, mech}] > 1:
			fail(name, kerr.DuplicateResource, "A user credential cannot be altered twice in the same request")
		default:
			return true
		}
		return false
	}
	next := map[string][]brokerop.ScramCredential{}
	for name, creds := range c.users {
		next[name] = creds
	}
	for _, d := range req.Deletions {
		if !check(d.Name, d.Mechanism) {
			continue
		}
		if !slices.ContainsFunc(c.users[d.Name], func(cr brokerop.ScramCredential) bool { return cr.Mechanism == d.Mechanism }) {
			fail(d.Name, kerr.ResourceNotFound, "Attempt to delete a user credential that does not exist")
		}
	}
	derived := map[key]brokerop.ScramCredential{}
	for _, u := range req.Upsertions {
		if !check(u.Name, u.Mechanism) {
			continue
		}
		switch {
		case u.Iterations < scramkey.MinIterations:
			fail(u.Name, kerr.UnacceptableCredential, fmt.Sprintf("Too few iterations: %d (minimum %d)", u.Iterations, scramkey.MinIterations))
			continue
		case u.Iterations > scramkey.MaxIterations:
			fail(u.Name, kerr.UnacceptableCredential, fmt.Sprintf("Too many iterations: %d (maximum %d)", u.Iterations, scramkey.MaxIterations))
			continue
		case len(u.Salt) == 0 || len(u.SaltedPassword) == 0:
			fail(u.Name, kerr.UnacceptableCredential, "Salt and salted password must not be empty")
			continue
		}
		cr, err := scramkey.FromSalted(scramkey.Mechanism(u.Mechanism), u.SaltedPassword, u.Salt, u.Iterations)
		if err != nil {
			fail(u.Name, kerr.UnacceptableCredential, err.Error())
			continue
		}
		derived[key{u.Name, u.Mechanism}] = brokerop.ScramCredential{
			Mechanism: u.Mechanism, Iterations: cr.Iterations, Salt: cr.Salt, StoredKey: cr.StoredKey, ServerKey: cr.ServerKey,
		}
	}
	changed := false
	for _, d := range req.Deletions {
		if errs[d.Name].ErrorCode != 0 {
			continue
		}
		creds := slices.DeleteFunc(slices.Clone(next[d.Name]), func(cr brokerop.ScramCredential) bool { return cr.Mechanism == d.Mechanism })
		if len(creds) == 0 {
			delete(next, d.Name)
		} else {
			next[d.Name] = creds
		}
		changed = true
	}
	for k, cr := range derived {
		if errs[k.name].ErrorCode != 0 {
			continue
		}
		creds := slices.DeleteFunc(slices.Clone(next[k.name]), func(c brokerop.ScramCredential) bool { return c.Mechanism == k.mech })
		creds = append(creds, cr)
		slices.SortFunc(creds, func(a, b brokerop.ScramCredential) int { return int(a.Mechanism) - int(b.Mechanism) })
		next[k.name] = creds
		changed = true
	}
	resp := &brokerop.AlterUserScramCredentialsResp{}
	if changed {
		if err := c.store.Store(next); err != nil {
			for _, r := range errs {
				if r.ErrorCode == 0 {
					r.ErrorCode, r.ErrorMessage = kerr.UnknownServerError.Code, "Storing the credentials failed: "+err.Error()
				}
			}
		} else {
			c.users = next
		}
	}
	for _, name := range order {
		resp.Results = append(resp.Results, *errs[name])
	}
	return resp, nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func cloneCreds(in []brokerop.ScramCredential) []brokerop.ScramCredential {
	out := make([]brokerop.ScramCredential, len(in))
	for i, c := range in {
		out[i] = brokerop.ScramCredential{Mechanism: c.Mechanism, Iterations: c.Iterations,
			Salt: bytes.Clone(c.Salt), StoredKey: bytes.Clone(c.StoredKey), ServerKey: bytes.Clone(c.ServerKey)}
	}
	return out
}

// FileCredentialStore keeps the credentials in one file (mode 0600), replaced atomically as
// FileRegistry is: write a temp file, fsync it, rename it over the old one, fsync the
// directory. The file is a header line "meshkafka-scram v1 crc32c=<8 hex digits> len=<n>\n"
// and n bytes of JSON; a file whose checksum does not match is refused. A failed rename or
// directory fsync is an unknown outcome: Store fails then and on every later call.
type FileCredentialStore struct {
	FS   wal.FS
	Path string

	failed error
}

const credentialsMagic = "meshkafka-scram v1"

// ErrCredentialsFailed is wrapped by every Store after a write of unknown outcome.
var ErrCredentialsFailed = errors.New("broker: credentials write of unknown outcome")

var credentialsFile = jsonMetaFile[map[string][]brokerop.ScramCredential]{what: "credentials",
	magic: credentialsMagic, perm: 0o600, failedErr: ErrCredentialsFailed, decode: DecodeCredentials}

// Load implements CredentialStore.
func (s *FileCredentialStore) Load() (map[string][]brokerop.ScramCredential, error) {
	return credentialsFile.load(s.FS, s.Path)
}

// DecodeCredentials decodes a credentials file.
func DecodeCredentials(buf []byte) (map[string][]brokerop.ScramCredential, error) {
	users, err := decodeJSONMeta[map[string][]brokerop.ScramCredential](buf, credentialsMagic)
	if err != nil {
		return nil, err
	}
	for name, creds := range users {
		for _, c := range creds {
			if !scramkey.Mechanism(c.Mechanism).Valid() || len(c.StoredKey) == 0 || len(c.ServerKey) == 0 {
				return nil, fmt.Errorf("user %q: invalid credential (mechanism %d)", name, c.Mechanism)
			}
		}
	}
	return users, nil
}

// Store implements CredentialStore.
func (s *FileCredentialStore) Store(users map[string][]brokerop.ScramCredential) error {
	return credentialsFile.store(s.FS, s.Path, &s.failed, users)
}

func encodeCredentials(users map[string][]brokerop.ScramCredential) ([]byte, error) {
	return encodeJSONMeta(credentialsMagic, users)
}
