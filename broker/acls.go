package broker

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/wal"
)

// ACLStore keeps the ACL bindings durably. Store replaces the whole set and returns only
// once it is durable. FileACLStore keeps them in a file; the metadata quorum can implement
// this interface to keep them as cluster metadata.
type ACLStore interface {
	// Load returns the stored bindings (nil and no error when nothing was ever stored).
	Load() ([]acl.Binding, error)
	// Store makes bindings the durable set.
	Store(bindings []acl.Binding) error
}

// ACLs serves the ACL ops (DescribeAcls, CreateAcls, DeleteAcls) over an ACLStore, with
// Kafka's rules (package broker/acl): creations are validated one by one (INVALID_REQUEST
// for an invalid one, the others still created; a binding already stored is not stored
// twice); every filter is validated; changes are applied in memory only after the store
// has them.
type ACLs struct {
	mu       sync.Mutex
	store    ACLStore
	bindings []acl.Binding // guarded by mu; replaced, never changed in place
	gen      uint64        // guarded by mu; counts changes of bindings
}

// ACLSnapshot returns a number that changes whenever the bindings do, and the bindings
// (shared: not to be modified).
func (a *ACLs) ACLSnapshot() (uint64, []acl.Binding) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.gen, a.bindings
}

// OpenACLs loads the bindings of store.
func OpenACLs(store ACLStore) (*ACLs, error) {
	bs, err := store.Load()
	if err != nil {
		return nil, err
	}
	return &ACLs{store: store, bindings: bs}, nil
}

// Security is both halves of brokerop.SecurityService: SCRAM credentials and ACLs.
type Security struct {
	*Credentials
	*ACLs
}

var _ brokerop.SecurityService = Security{}

// OpenFileSecurity opens the SCRAM credentials and the ACLs kept in files under dir on fs
// (dir/scram.credentials, dir/acls), as a broker's daemon keeps them.
func OpenFileSecurity(fs wal.FS, dir string) (Security, error) {
	c, err := OpenCredentials(&FileCredentialStore{FS: fs, Path: filepath.Join(dir, "scram.credentials")})
	if err != nil {
		return Security{}, fmt.Errorf("open credentials: %w", err)
	}
	a, err := OpenACLs(&FileACLStore{FS: fs, Path: filepath.Join(dir, "acls")})
	if err != nil {
		return Security{}, fmt.Errorf("open ACLs: %w", err)
	}
	return Security{Credentials: c, ACLs: a}, nil
}

// BindingFromOp converts a brokerop binding.
func BindingFromOp(b brokerop.AclBinding) acl.Binding {
	return acl.Binding{ResourceType: acl.ResourceType(b.ResourceType), ResourceName: b.ResourceName,
		PatternType: acl.PatternType(b.PatternType), Principal: b.Principal, Host: b.Host,
		Operation: acl.Operation(b.Operation), Permission: acl.Permission(b.Permission)}
}

// BindingToOp converts a binding to its brokerop form.
func BindingToOp(b acl.Binding) brokerop.AclBinding {
	return brokerop.AclBinding{ResourceType: int8(b.ResourceType), ResourceName: b.ResourceName,
		PatternType: int8(b.PatternType), Principal: b.Principal, Host: b.Host,
		Operation: int8(b.Operation), Permission: int8(b.Permission)}
}

// FilterFromOp converts a brokerop filter.
func FilterFromOp(f brokerop.AclFilter) acl.Filter {
	out := acl.Filter{ResourceType: acl.ResourceType(f.ResourceType), PatternType: acl.PatternType(f.PatternType),
		Operation: acl.Operation(f.Operation), Permission: acl.Permission(f.Permission)}
	if f.HasResourceName {
		out.ResourceName = &f.ResourceName
	}
	if f.HasPrincipal {
		out.Principal = &f.Principal
	}
	if f.HasHost {
		out.Host = &f.Host
	}
	return out
}

// DescribeAcls answers the bindings the filter selects, in the order they were created.
func (a *ACLs) DescribeAcls(_ context.Context, req *brokerop.DescribeAclsReq) (*brokerop.DescribeAclsResp, error) {
	f := FilterFromOp(req.Filter)
	if err := f.Validate(); err != nil {
		return &brokerop.DescribeAclsResp{ErrorCode: kerr.InvalidRequest.Code, ErrorMessage: err.Error()}, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	resp := &brokerop.DescribeAclsResp{}
	for _, b := range a.bindings {
		if f.Matches(b) {
			resp.Bindings = append(resp.Bindings, BindingToOp(b))
		}
	}
	return resp, nil
}

// CreateAcls validates and stores the creations.
func (a *ACLs) CreateAcls(_ context.Context, req *brokerop.CreateAclsReq) (*brokerop.CreateAclsResp, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	resp := &brokerop.CreateAclsResp{Results: make([]brokerop.AclResult, len(req.Creations))}
	next := slices.Clone(a.bindings)
	changed := false
	for i, c := range req.Creations {
		b := BindingFromOp(c)
		if err := b.Validate(); err != nil {
			resp.Results[i] = brokerop.AclResult{ErrorCode: kerr.InvalidRequest.Code, ErrorMessage: err.Error()}
			continue
		}
		if !slices.Contains(next, b) {
			next = append(next, b)
			changed = true
		}
	}
	if changed {
		if err := a.store.Store(next); err != nil {
			for i := range resp.Results {
				if resp.Results[i].ErrorCode == 0 {
					resp.Results[i] = brokerop.AclResult{ErrorCode: kerr.UnknownServerError.Code, ErrorMessage: "Storing the ACLs failed: " + err.Error()}
				}
			}
			return resp, nil
		}
		a.bindings, a.gen = next, a.gen+1
	}
	return resp, nil
}

// DeleteAcls deletes, for each filter, the bindings it selects (a binding selected by two
// filters is answered under the first).
func (a *ACLs) DeleteAcls(_ context.Context, req *brokerop.DeleteAclsReq) (*brokerop.DeleteAclsResp, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	resp := &brokerop.DeleteAclsResp{Results: make([]brokerop.AclDeleteResult, len(req.Filters))}
	gone := make([]bool, len(a.bindings))
	changed := false
	for i, of := range req.Filters {
		f := FilterFromOp(of)
		if err := f.Validate(); err != nil {
			resp.Results[i] = brokerop.AclDeleteResult{ErrorCode: kerr.InvalidRequest.Code, ErrorMessage: err.Error()}
			continue
		}
		for j, b := range a.bindings {
			if !gone[j] && f.Matches(b) {
				gone[j], changed = true, true
				resp.Results[i].Deleted = append(resp.Results[i].Deleted, BindingToOp(b))
			}
		}
	}
	if !changed {
		return resp, nil
	}
	var next []acl.Binding
	for j, b := range a.bindings {
		if !gone[j] {
			next = append(next, b)
		}
	}
	if err := a.store.Store(next); err != nil {
		for i := range resp.Results {
			if resp.Results[i].ErrorCode == 0 {
				resp.Results[i] = brokerop.AclDeleteResult{ErrorCode: kerr.UnknownServerError.Code, ErrorMessage: "Storing the ACLs failed: " + err.Error()}
			}
		}
		return resp, nil
	}
	a.bindings, a.gen = next, a.gen+1
	return resp, nil
}

// FileACLStore keeps the bindings in one file (mode 0600) in the credentials file's format
// (header "meshkafka-acls v1 crc32c=<hex> len=<n>", JSON body), replaced atomically. A failed
// rename or directory fsync is an unknown outcome: Store fails then and on every later call.
type FileACLStore struct {
	FS   wal.FS
	Path string

	failed error
}

const aclsMagic = "meshkafka-acls v1"

// ErrACLsFailed is wrapped by every Store after a write of unknown outcome.
var ErrACLsFailed = errors.New("broker: ACLs write of unknown outcome")

var aclsFile = jsonMetaFile[[]acl.Binding]{what: "ACLs", magic: aclsMagic, perm: 0o600,
	failedErr: ErrACLsFailed, decode: DecodeACLs}

// Load implements ACLStore.
func (s *FileACLStore) Load() ([]acl.Binding, error) { return aclsFile.load(s.FS, s.Path) }

// DecodeACLs decodes an ACLs file; a file holding an invalid binding is refused.
func DecodeACLs(buf []byte) ([]acl.Binding, error) {
	bs, err := decodeJSONMeta[[]acl.Binding](buf, aclsMagic)
	if err != nil {
		return nil, err
	}
	for i, b := range bs {
		if err := b.Validate(); err != nil {
			return nil, fmt.Errorf("binding %d: %w", i, err)
		}
	}
	return bs, nil
}

// Store implements ACLStore.
func (s *FileACLStore) Store(bs []acl.Binding) error {
	if bs == nil {
		bs = []acl.Binding{} // "[]", not "null"
	}
	return aclsFile.store(s.FS, s.Path, &s.failed, bs)
}
