package meshkafka_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestTaskfileParses runs go-task (the module's tool) on Taskfile.yml: a Taskfile that does not
// parse stops every task, CI's `go tool task test` first of all, and nothing else notices it.
// It also checks that the tasks the README names are listed.
func TestTaskfileParses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go tool task")
	}
	cmd := exec.Command("go", "tool", "task", "--list-all")
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	raw, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go tool task --list-all: %v\n%s", err, raw)
	}
	// go-task colours its output when CI is set, whatever NO_COLOR says: drop the escapes.
	out := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(string(raw), "")
	for _, name := range []string{"* up:", "* test:", "* bench:", "* chaos:"} {
		if !strings.Contains(out, name) {
			t.Errorf("task list lacks %q:\n%s", name, out)
		}
	}
}
