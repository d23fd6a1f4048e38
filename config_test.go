package meshkafka_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// configExempt are the directories (relative to the module root) whose code may read the
// environment and register flags, besides every directory named cmd (the binaries: cmd/ and
// generators such as internal/cmd/…): the test harness run only by tests (interop/, and
// broker/internal/brokertest, which only the broker packages' tests import: its ChaosSeeds
// reads DURABILITY_CHAOS_SEEDS) and dev-time tools (tools/). Everywhere else configuration
// arrives as Config / Options fields set by a binary (see cmd/internal/cli).
var configExempt = []string{"interop", "tools", "broker/internal/brokertest"}

// envFuncs are the functions that read the process environment.
var envFuncs = map[string][]string{
	"os":      {"Getenv", "LookupEnv", "Environ", "ExpandEnv"},
	"syscall": {"Getenv", "Environ"},
}

// configViolations parses every non-test Go file under root, outside directories named cmd and
// the exempt ones,
// and reports each reference to an environment-reading function and each import of package
// flag, as "path:line: what".
func configViolations(t *testing.T, root string, exempt []string) []string {
	t.Helper()
	var out []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			name := d.Name()
			if rel != "." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor" || name == "cmd" || slices.Contains(exempt, rel)) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		names := map[string]string{} // local name -> import path, for os and syscall
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			local := p
			if im.Name != nil {
				local = im.Name.Name
			}
			switch {
			case p == "flag":
				out = append(out, rel+":"+strconv.Itoa(fset.Position(im.Pos()).Line)+": imports flag (register flags in cmd/)")
			case envFuncs[p] != nil && local != "_":
				names[local] = p
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			if p, ok := names[x.Name]; ok && slices.Contains(envFuncs[p], sel.Sel.Name) {
				out = append(out, rel+":"+strconv.Itoa(fset.Position(sel.Pos()).Line)+": uses "+p+"."+sel.Sel.Name+" (read the environment in cmd/)")
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestConfigOnlyInCmd: nothing outside cmd/ (and tests) reads the environment or registers
// flags; libraries take what they need as options.
func TestConfigOnlyInCmd(t *testing.T) {
	for _, v := range configViolations(t, ".", configExempt) {
		t.Error(v)
	}
}

// TestConfigViolationsFound plants violations in a throw-away tree and checks that the scan
// reports each one, and nothing in the exempt or test files.
func TestConfigViolationsFound(t *testing.T) {
	root := t.TempDir()
	write := func(rel, src string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("lib/env.go", "package lib\n\nimport \"os\"\n\nfunc A() string { return os.Getenv(\"X\") }\n")
	write("lib/alias.go", "package lib\n\nimport o \"os\"\n\nvar getenv = o.LookupEnv\n")
	write("lib/sys_linux.go", "package lib\n\nimport \"syscall\"\n\nfunc B() []string { return syscall.Environ() }\n")
	write("lib/flags.go", "package lib\n\nimport \"flag\"\n\nvar _ = flag.Bool\n")
	write("lib/clean.go", "package lib\n\nimport \"os\"\n\nfunc C() ([]byte, error) { return os.ReadFile(\"x\") }\n")
	write("lib/env_test.go", "package lib\n\nimport \"os\"\n\nvar _ = os.Getenv(\"T\")\n")
	binary := "package main\n\nimport (\n\t\"flag\"\n\t\"os\"\n)\n\nvar _ = flag.String\nvar _ = os.Getenv\n\nfunc main() {}\n"
	write("cmd/tool/main.go", binary)
	write("internal/cmd/gen/main.go", binary)
	write("harness/run.go", binary)
	write("lib/cmdline/main.go", binary) // not a cmd directory: flagged
	got := configViolations(t, root, []string{"harness"})
	want := []string{
		"lib/alias.go:5: uses os.LookupEnv",
		"lib/cmdline/main.go:4: imports flag",
		"lib/cmdline/main.go:9: uses os.Getenv",
		"lib/env.go:5: uses os.Getenv",
		"lib/flags.go:3: imports flag",
		"lib/sys_linux.go:5: uses syscall.Environ",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d violations %q, want %d", len(got), got, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("violation %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
}
