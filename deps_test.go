package meshkafka_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/meshkafka/meshkafka"

type listed struct {
	ImportPath string
	Name       string
	Deps       []string
	Imports    []string
	Doc        string
	GoFiles    []string
	Dir        string
}

func goList(t *testing.T) []listed {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps=false", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p listed
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func depsOf(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{join .Deps "\n"}}`, pkg).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func isStd(p string) bool {
	first := strings.SplitN(p, "/", 2)[0]
	return !strings.Contains(first, ".")
}

// rules: package prefix (relative to the module) -> forbidden import predicates.
// The dependency direction is documented in README.md ("Layout").
func TestDependencyDirection(t *testing.T) {
	local := func(rel string) func(string) bool {
		return func(d string) bool { return d == mod+"/"+rel || strings.HasPrefix(d, mod+"/"+rel+"/") }
	}
	notStdOr := func(allowed ...string) func(string) bool {
		return func(d string) bool {
			if isStd(d) || strings.HasPrefix(d, mod+"/") {
				return false
			}
			for _, a := range allowed {
				if strings.HasPrefix(d, a) {
					return false
				}
			}
			return true
		}
	}
	testOnly := func(d string) bool {
		return d == "testing" || strings.HasSuffix(d, "/kfake") || strings.HasSuffix(d, "/kgo") ||
			strings.HasPrefix(d, mod+"/") && isHarness(strings.TrimPrefix(d, mod+"/"))
	}
	type rule struct {
		why    string
		banned func(string) bool
	}
	// The mesh and its internal helpers (start-up, fixtures) know nothing of Kafka.
	noKafka := rule{"mesh knows nothing of Kafka", func(d string) bool {
		return local("kafkawire")(d) || local("broker")(d) || local("gateway")(d) || local("wal")(d) ||
			strings.Contains(d, "franz-go")
	}}
	rules := map[string][]rule{
		"wal": {
			{"wal depends only on std and x/sys", notStdOr("golang.org/x/sys")},
		},
		"internal/clock": {
			{"the clock depends only on std, so every package may import it", func(d string) bool { return !isStd(d) }},
		},
		"internal/raftnet": {
			{"the in-memory raft network is std only: both raft layers (broker/quorum, broker/replica) import it", func(d string) bool { return !isStd(d) }},
		},
		"kafkawire": {
			{"kafkawire is a codec layer", func(d string) bool {
				return local("mesh")(d) || local("broker")(d) || local("gateway")(d) || local("wal")(d)
			}},
		},
		"mesh":              {noKafka},
		"internal/meshnode": {noKafka},
		"internal/meshtest": {noKafka},
		"broker": {
			{"broker is storage and group semantics, not a front door", func(d string) bool {
				return local("gateway")(d)
			}},
		},
		"broker/metadata": {
			{"the metadata state machine is I/O-free: std (no net) and internal/postcard only", func(d string) bool {
				return !isStd(d) && d != mod+"/internal/postcard" || d == "net"
			}},
		},
		"broker/quorum/raftlog": {
			{"raftlog is raft storage on wal.FS: std, etcd raft, protobuf and (of ours) wal only", func(d string) bool {
				if strings.HasPrefix(d, mod+"/") {
					return d != mod+"/wal"
				}
				return notStdOr("go.etcd.io/raft/", "google.golang.org/protobuf/", "golang.org/x/sys")(d)
			}},
		},
		"broker/replica/raftstore": {
			{"raftstore is one partition's raft storage on its wal.Log: std, etcd raft, protobuf, wal and broker/replica only", func(d string) bool {
				if strings.HasPrefix(d, mod+"/") {
					return d != mod+"/wal" && d != mod+"/broker/replica" && d != mod+"/internal/clock" &&
						d != mod+"/internal/raftnet" // broker/replica's LocalNet
				}
				return notStdOr("go.etcd.io/raft/", "google.golang.org/protobuf/", "golang.org/x/sys")(d)
			}},
		},
		"broker/acl": {
			{"the authorizer is pure: std only (no net)", func(d string) bool {
				return !isStd(d) || d == "net"
			}},
		},
		"internal/postcard": {
			{"the shared postcard codec is a leaf both mesh and broker import", func(d string) bool {
				return !isStd(d)
			}},
		},
		"gateway": {
			{"gateway reaches storage only through its backend", func(d string) bool { return local("wal")(d) }},
		},
		"broker/replica/replmesh": {
			{"the replica transport knows only the mesh, the replica engine's types and raftpb", func(d string) bool {
				return d == mod+"/broker" || local("broker/quorum")(d) || local("broker/metadata")(d) ||
					local("broker/controller")(d) || local("gateway")(d) || local("wal")(d) ||
					local("broker/replica/raftstore")(d) || strings.Contains(d, "franz-go")
			}},
		},
		"broker/quorum/raftmesh": {
			{"the raft transport satisfies quorum.Transport structurally and knows only the mesh and raftpb", func(d string) bool {
				return d == mod+"/broker/quorum" || d == mod+"/broker" || local("broker/metadata")(d) ||
					local("broker/controller")(d) || local("gateway")(d) || local("wal")(d) || strings.Contains(d, "franz-go")
			}},
		},
	}
	// exact: rules for one package only (not its subpackages).
	exact := map[string]rule{
		"broker/replica": {"the raft engine is std, etcd raft, protobuf, internal/clock and internal/raftnet only (no wal, mesh or broker)", func(d string) bool {
			if strings.HasPrefix(d, mod+"/") {
				return d != mod+"/internal/clock" && d != mod+"/internal/raftnet"
			}
			return notStdOr("go.etcd.io/raft/", "google.golang.org/protobuf/")(d)
		}},
	}
	for _, p := range goList(t) {
		rel := strings.TrimPrefix(p.ImportPath, mod+"/")
		deps := depsOf(t, p.ImportPath)
		if r, ok := exact[rel]; ok {
			for _, d := range deps {
				if r.banned(d) {
					t.Errorf("%s imports %s: %s", p.ImportPath, d, r.why)
				}
			}
		}
		for prefix, rs := range rules {
			if rel != prefix && !strings.HasPrefix(rel, prefix+"/") {
				continue
			}
			for _, r := range rs {
				for _, d := range deps {
					if r.banned(d) {
						t.Errorf("%s imports %s: %s", p.ImportPath, d, r.why)
					}
				}
			}
		}
		if strings.HasPrefix(rel, "interop") || isHarness(rel) {
			continue // test harness packages may use testing, kgo and kfake
		}
		for _, d := range deps {
			if testOnly(d) {
				t.Errorf("%s (non-test code) imports test-only package %s", p.ImportPath, d)
			}
		}
	}
}

// harnesses are the test fixtures not named *test.
var harnesses = []string{"internal/kafkaclients"}

// isHarness reports whether a module-relative package path is a test harness: it or a
// parent is named *test (internal/meshtest, internal/meshtest/natlab, internal/gatewaytest,
// wal/waltest), or it is one of harnesses (the real Kafka client recipes).
func isHarness(rel string) bool {
	if slices.Contains(harnesses, rel) {
		return true
	}
	for _, seg := range strings.Split(rel, "/") {
		if strings.HasSuffix(seg, "test") {
			return true
		}
	}
	return false
}

// TestIOFreeCores: the I/O-free state machines import no sockets, files, locks or random
// sources and read no clock: their owners feed them time and events.
func TestIOFreeCores(t *testing.T) {
	cores := map[string]bool{mod + "/mesh/magicsock/internal/nodemap": true, mod + "/broker/share": true}
	banned := []string{"net", "os", "sync", "crypto/rand", "math/rand", "math/rand/v2", "github.com/quic-go/quic-go"}
	clockCalls := []string{"time.Now(", "time.Since(", "time.Until(", "time.After(", "time.AfterFunc(", "time.NewTimer(", "time.NewTicker(", "time.Tick(", "time.Sleep(", "go func"}
	seen := 0
	for _, p := range goList(t) {
		if !cores[p.ImportPath] {
			continue
		}
		seen++
		for _, imp := range p.Imports {
			if slices.Contains(banned, imp) || strings.HasPrefix(imp, mod+"/mesh/relay") {
				t.Errorf("%s imports %s: an I/O-free core takes time, randomness and packets from its owner", p.ImportPath, imp)
			}
		}
		for _, f := range p.GoFiles {
			src, err := os.ReadFile(filepath.Join(p.Dir, f))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range clockCalls {
				if bytes.Contains(src, []byte(c)) {
					t.Errorf("%s/%s calls %s: an I/O-free core gets now from Handle", p.ImportPath, f, strings.TrimSuffix(c, "("))
				}
			}
		}
	}
	if seen != len(cores) {
		t.Fatalf("found %d of the %d cores", seen, len(cores))
	}
}

// TestNoReflectInOpDispatch: the gateway↔broker op path is generated code (brokerop's
// codec, op table and dispatch switch, by internal/cmd/opgen), not reflection. The packages
// that encode, decode, dispatch and carry ops must not import reflect (tests may).
func TestNoReflectInOpDispatch(t *testing.T) {
	dispatch := []string{"broker/brokerop", "broker/brokermesh", "gateway/cluster", "internal/postcard"}
	for _, p := range goList(t) {
		rel := strings.TrimPrefix(p.ImportPath, mod+"/")
		for _, d := range dispatch {
			if rel != d && !strings.HasPrefix(rel, d+"/") {
				continue
			}
			for _, imp := range p.Imports {
				if imp == "reflect" {
					t.Errorf("%s imports reflect: the op dispatch path is generated code", p.ImportPath)
				}
			}
		}
	}
}

// TestPackageDocs: every package carries a package doc (a doc.go by convention).
func TestPackageDocs(t *testing.T) {
	for _, p := range goList(t) {
		if p.Name == "main" || len(p.GoFiles) == 0 {
			continue
		}
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s has no package doc (add doc.go)", p.ImportPath)
		}
	}
}

// apiRoots are the trees a Go user imports: the mesh, the Kafka wire codec, the broker, the
// gateway, the log and the telemetry setup. Everything else is under an internal/ directory
// (code shared by the binaries, codec internals, test fixtures), cmd/ or interop/.
var apiRoots = []string{"mesh", "kafkawire", "broker", "gateway", "wal", "telemetry"}

// isInternal reports whether a module-relative package path lies under an internal/ directory.
func isInternal(rel string) bool {
	return rel == "internal" || strings.HasPrefix(rel, "internal/") || strings.Contains(rel, "/internal/") ||
		strings.HasSuffix(rel, "/internal")
}

// publicSurface returns the module-relative paths of the importable packages outside internal/,
// cmd/ and interop/ (packages with only tests, such as the module root, are not importable).
func publicSurface(pkgs []listed) []string {
	var out []string
	for _, p := range pkgs {
		rel := strings.TrimPrefix(p.ImportPath, mod+"/")
		if p.Name == "main" || len(p.GoFiles) == 0 || isInternal(rel) ||
			slices.Contains([]string{"cmd", "interop"}, strings.SplitN(rel, "/", 2)[0]) {
			continue
		}
		out = append(out, rel)
	}
	return out
}

// TestPublicSurface: every package a Go user can import from this module lies under one of
// apiRoots and carries a package doc. (Go itself refuses imports of internal/ from outside the
// tree that holds it.)
func TestPublicSurface(t *testing.T) {
	pkgs := goList(t)
	docs := map[string]string{}
	for _, p := range pkgs {
		docs[strings.TrimPrefix(p.ImportPath, mod+"/")] = p.Doc
	}
	surface := publicSurface(pkgs)
	for _, rel := range surface {
		root := strings.SplitN(rel, "/", 2)[0]
		if !slices.Contains(apiRoots, root) {
			t.Errorf("%s is importable but not under an API root %v: move it under internal/ (or cmd/, interop/)", rel, apiRoots)
		}
		if strings.TrimSpace(docs[rel]) == "" {
			t.Errorf("%s is API but has no package doc", rel)
		}
	}
	// The list is real: the main API packages are on it and what is not API is not.
	for _, want := range []string{"mesh/endpoint", "mesh/gossip", "kafkawire", "broker", "gateway", "wal", "telemetry"} {
		if !slices.Contains(surface, want) {
			t.Errorf("public surface %v lacks %s", surface, want)
		}
	}
	for _, rel := range []string{"internal/meshnode", "internal/meshtest", "internal/meshtest/natlab",
		"internal/gatewaytest", "internal/gatewaytest/serve", "internal/kafkaclients", "internal/postcard", "mesh/magicsock/internal/nodemap",
		"cmd/internal/cli", "interop/irohnode"} {
		if _, ok := docs[rel]; !ok {
			t.Errorf("package %s not found", rel)
		}
		if slices.Contains(surface, rel) {
			t.Errorf("public surface lists %s", rel)
		}
	}
}
