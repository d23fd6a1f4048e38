// Command dupcount runs the `duplicates` tool (the workplace's duplicate finder, on PATH for
// developers) over the module's tracked files with every grouped Go import block written as
// one `import "path"` line per package, and prints its report.
//
// duplicates passes over import lines, but it does not see the lines inside an
// `import ( … )` block as imports: two files that import the same six standard packages make
// a "pair". In this tree more than half of the pairs it lists are such import lists (issue
// #13 counts pairs). dupcount shows the pairs that hold code: the same files, only the
// import blocks spelled the way the tool recognises. It writes nothing in the tree (a
// temporary copy is made and removed).
//
//	go run ./internal/cmd/dupcount [duplicates flags, e.g. --most 200 --seconds 120]
package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "dupcount:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return fmt.Errorf("git rev-parse: %w", err)
	}
	top := string(bytes.TrimSpace(root))
	files, err := exec.Command("git", "-C", top, "ls-files", "-z").Output()
	if err != nil {
		return fmt.Errorf("git ls-files: %w", err)
	}
	tmp, err := os.MkdirTemp("", "dupcount-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, name := range bytes.Split(bytes.TrimRight(files, "\x00"), []byte{0}) {
		rel := string(name)
		b, err := os.ReadFile(filepath.Join(top, rel))
		if err != nil {
			if os.IsNotExist(err) { // deleted in the working tree
				continue
			}
			return err
		}
		if filepath.Ext(rel) == ".go" {
			b = ungroupImports(b)
		}
		dst := filepath.Join(tmp, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
	}
	cmd := exec.Command("duplicates", append([]string{"--repo", tmp}, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// importBlock is a gofmt-formatted grouped import declaration.
var importBlock = regexp.MustCompile(`(?ms)^import \(\n(.*?)^\)`)

// ungroupImports rewrites each grouped import block of a gofmt-formatted Go file as one
// import line per package; the block's other lines (its parentheses, blank lines, comments)
// become blank lines, so every line keeps its number and the report's places are the tree's.
func ungroupImports(src []byte) []byte {
	return importBlock.ReplaceAllFunc(src, func(block []byte) []byte {
		body := importBlock.FindSubmatch(block)[1]
		out := []byte("\n") // "import ("
		for _, line := range bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n")) {
			line = bytes.TrimSpace(line)
			if len(line) > 0 && !bytes.HasPrefix(line, []byte("//")) {
				out = append(append(out, "import "...), line...)
			}
			out = append(out, '\n')
		}
		return out // ")" becomes the empty line after the last
	})
}
