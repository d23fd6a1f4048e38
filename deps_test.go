package meshkafka_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
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
			strings.HasSuffix(d, "test") && strings.HasPrefix(d, mod+"/")
	}
	type rule struct {
		why    string
		banned func(string) bool
	}
	rules := map[string][]rule{
		"wal": {
			{"wal depends only on std and x/sys", notStdOr("golang.org/x/sys")},
		},
		"internal/clock": {
			{"the clock depends only on std, so every package may import it", func(d string) bool { return !isStd(d) }},
		},
		"kafkawire": {
			{"kafkawire is a codec layer", func(d string) bool {
				return local("mesh")(d) || local("broker")(d) || local("gateway")(d) || local("wal")(d)
			}},
		},
		"mesh": {
			{"mesh knows nothing of Kafka", func(d string) bool {
				return local("kafkawire")(d) || local("broker")(d) || local("gateway")(d) || local("wal")(d) ||
					strings.Contains(d, "franz-go")
			}},
		},
		"broker": {
			{"broker is storage and group semantics, not a front door", func(d string) bool {
				return local("gateway")(d)
			}},
		},
		"gateway": {
			{"gateway reaches storage only through its backend", func(d string) bool { return local("wal")(d) }},
		},
	}
	for _, p := range goList(t) {
		rel := strings.TrimPrefix(p.ImportPath, mod+"/")
		deps := depsOf(t, p.ImportPath)
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
		if strings.HasPrefix(rel, "interop") || strings.HasSuffix(rel, "test") {
			continue // test harness packages may use testing, kgo and kfake
		}
		for _, d := range deps {
			if testOnly(d) {
				t.Errorf("%s (non-test code) imports test-only package %s", p.ImportPath, d)
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
