package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const brokerop = "../../../broker/brokerop"

// The generated files are checked in; this fails when they differ from what opgen makes of
// the current Service declaration (run go generate ./broker/brokerop).
func TestGeneratedFilesAreCurrent(t *testing.T) {
	def, err := Load(brokerop)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		gen  func(*Def) ([]byte, error)
	}{
		{filepath.Join(brokerop, "ops_gen.go"), GenOps},
		{filepath.Join(brokerop, "..", "brokermesh", "caller_gen.go"), GenCaller},
	} {
		want, err := c.gen(def)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale; run: go generate ./broker/brokerop", c.path)
		}
	}
}

// Every op of the Service declaration is found, with its code constant and structs.
func TestLoadFindsOps(t *testing.T) {
	def, err := Load(brokerop)
	if err != nil {
		t.Fatal(err)
	}
	if len(def.Ops) != 62 {
		t.Fatalf("found %d ops, want 62", len(def.Ops))
	}
	byName := map[string]Op{}
	for _, o := range def.Ops {
		byName[o.Name] = o
	}
	if o := byName["incremental_alter_configs"]; o.Code != "OpIncrementalAlterConfigs" || o.Req != "IncrementalAlterConfigsReq" || o.Resp != "AlterConfigsResp" {
		t.Fatalf("incremental_alter_configs = %+v", o)
	}
	if strings.Join(def.Local, ",") != "ProduceStaged,FetchPooled" {
		t.Fatalf("local forms = %v", def.Local)
	}
	if !def.hasRecords("ProduceReq") || !def.hasRecords("FetchResp") || def.hasRecords("FetchReq") || def.hasRecords("ProduceResp") {
		t.Fatal("records fields are not where the ops carry record sets")
	}
}

// Bad declarations are refused with an error naming the problem.
func TestLoadRejects(t *testing.T) {
	cases := map[string]string{
		"bad signature": `type Service interface {
	//kafkaop:x OpX
	X(req *XReq) error
}
type XReq struct{}`,
		"unknown type": `type Service interface {
	//kafkaop:x OpX
	X(ctx context.Context, req *XReq) (*XResp, error)
}
type XReq struct{ A float32 }
type XResp struct{}`,
		"records not bytes": "type Service interface {\n\t//kafkaop:x OpX\n\tX(ctx context.Context, req *XReq) (*XResp, error)\n}\ntype XReq struct{ A string `kafkaop:\"records\"` }\ntype XResp struct{}",
		"duplicate code": `type Service interface {
	//kafkaop:x OpX
	X(ctx context.Context, req *XReq) (*XResp, error)
	//kafkaop:y OpX
	Y(ctx context.Context, req *XReq) (*XResp, error)
}
type XReq struct{}
type XResp struct{}`,
	}
	for name, src := range cases {
		dir := t.TempDir()
		hdr := "package p\n\ntype RequestHeader struct{ ID uint64 }\ntype ResponseHeader struct{ ID uint64 }\n\n"
		if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(hdr+src+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
