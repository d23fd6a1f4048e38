package broker

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

func opBinding(typ acl.ResourceType, name string, pat acl.PatternType, principal string, op acl.Operation, perm acl.Permission) brokerop.AclBinding {
	return BindingToOp(acl.Binding{ResourceType: typ, ResourceName: name, PatternType: pat, Principal: principal, Host: "*", Operation: op, Permission: perm})
}

var anyFilter = brokerop.AclFilter{ResourceType: int8(acl.ResourceAny), PatternType: int8(acl.PatternAny), Operation: int8(acl.OpAny), Permission: int8(acl.PermissionAny)}

// ACLs survive a crash once CreateAcls/DeleteAcls answered; invalid creations get
// INVALID_REQUEST while the valid ones in the same request are stored; a binding created
// twice is stored once.
func TestACLsDurable(t *testing.T) {
	fs := newDataFS()
	a, err := OpenACLs(&FileACLStore{FS: fs, Path: "data/acls"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w := opBinding(acl.ResourceTopic, "a", acl.PatternLiteral, "User:alice", acl.OpWrite, acl.PermissionAllow)
	g := opBinding(acl.ResourceGroup, "g", acl.PatternPrefixed, "User:alice", acl.OpRead, acl.PermissionAllow)
	bad := opBinding(acl.ResourceCluster, "c", acl.PatternLiteral, "User:alice", acl.OpAlter, acl.PermissionAllow)
	resp, _ := a.CreateAcls(ctx, &brokerop.CreateAclsReq{Creations: []brokerop.AclBinding{w, bad, g, w}})
	if codes := []int16{resp.Results[0].ErrorCode, resp.Results[1].ErrorCode, resp.Results[2].ErrorCode, resp.Results[3].ErrorCode}; codes[0] != 0 || codes[1] != kerr.InvalidRequest.Code || codes[2] != 0 || codes[3] != 0 {
		t.Fatalf("create codes %v", codes)
	}
	fs.Crash()
	a, err = OpenACLs(&FileACLStore{FS: fs, Path: "data/acls"})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := a.DescribeAcls(ctx, &brokerop.DescribeAclsReq{Filter: anyFilter})
	if len(d.Bindings) != 2 || d.Bindings[0] != w || d.Bindings[1] != g {
		t.Fatalf("after crash: %+v", d.Bindings)
	}
	f := anyFilter
	f.ResourceType = int8(acl.ResourceGroup)
	del, _ := a.DeleteAcls(ctx, &brokerop.DeleteAclsReq{Filters: []brokerop.AclFilter{f, {ResourceType: 0}}})
	if len(del.Results[0].Deleted) != 1 || del.Results[0].Deleted[0] != g || del.Results[1].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("delete: %+v", del)
	}
	fs.Crash()
	a, _ = OpenACLs(&FileACLStore{FS: fs, Path: "data/acls"})
	if d, _ := a.DescribeAcls(ctx, &brokerop.DescribeAclsReq{Filter: anyFilter}); len(d.Bindings) != 1 || d.Bindings[0] != w {
		t.Fatalf("after delete and crash: %+v", d.Bindings)
	}
	if d, _ := a.DescribeAcls(ctx, &brokerop.DescribeAclsReq{}); d.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("UNKNOWN filter answered %+v", d)
	}
}

// A failed write changes nothing in memory or on disk; a corrupted file is refused; an
// unknown outcome is sticky.
func TestACLsWriteFailureAndCorruption(t *testing.T) {
	fs := newDataFS()
	path := "data/acls"
	a, _ := OpenACLs(&FileACLStore{FS: fs, Path: path})
	ctx := context.Background()
	w := opBinding(acl.ResourceTopic, "a", acl.PatternLiteral, "User:alice", acl.OpWrite, acl.PermissionAllow)
	a.CreateAcls(ctx, &brokerop.CreateAclsReq{Creations: []brokerop.AclBinding{w}})
	fs.FailSyncs(1, syscall.EIO)
	r := opBinding(acl.ResourceTopic, "a", acl.PatternLiteral, "User:bob", acl.OpRead, acl.PermissionAllow)
	resp, _ := a.CreateAcls(ctx, &brokerop.CreateAclsReq{Creations: []brokerop.AclBinding{r}})
	if resp.Results[0].ErrorCode != kerr.UnknownServerError.Code || !strings.Contains(resp.Results[0].ErrorMessage, "Storing the ACLs failed") {
		t.Fatalf("failed store answered %+v", resp)
	}
	if d, _ := a.DescribeAcls(ctx, &brokerop.DescribeAclsReq{Filter: anyFilter}); len(d.Bindings) != 1 {
		t.Fatalf("memory changed by a failed store: %+v", d)
	}
	refusesCorrupted(t, fs, path, 8*50, func() error {
		_, err := OpenACLs(&FileACLStore{FS: fs, Path: path})
		return err
	})
	store := &FileACLStore{FS: failRenameFS{waltest.NewCrashFS()}, Path: "acls"}
	for range 2 {
		if err := store.Store(nil); !errors.Is(err, ErrACLsFailed) {
			t.Fatalf("store after failed rename: %v", err)
		}
	}
}

func FuzzDecodeACLs(f *testing.F) {
	body, _ := json.Marshal([]acl.Binding{{ResourceType: acl.ResourceTopic, ResourceName: "a", PatternType: acl.PatternLiteral,
		Principal: "User:alice", Host: "*", Operation: acl.OpRead, Permission: acl.PermissionAllow}})
	f.Add(metaFile(aclsMagic, body))
	f.Add(metaFile(aclsMagic, []byte("[]")))
	f.Add([]byte("meshkafka-acls v1 crc32c=00000000 len=2\n[]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		bs, err := DecodeACLs(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(bs)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeACLs(metaFile(aclsMagic, again))
		if err != nil || len(back) != len(bs) {
			t.Fatalf("re-encoded file does not decode: %v", err)
		}
		for i := range bs {
			if back[i] != bs[i] || bs[i].Validate() != nil {
				t.Fatalf("binding %d changed or invalid: %+v %+v", i, bs[i], back[i])
			}
		}
	})
}
