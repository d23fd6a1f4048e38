package meshkafka_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestTaskfileParses runs go-task (the module's tool) on Taskfile.yml: a Taskfile that does not
// parse stops every task, CI's `go tool task test` first of all, and nothing else notices it.
// It also checks the two tasks the README names are listed.
func TestTaskfileParses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go tool task")
	}
	out, err := exec.Command("go", "tool", "task", "--list-all").CombinedOutput()
	if err != nil {
		t.Fatalf("go tool task --list-all: %v\n%s", err, out)
	}
	for _, name := range []string{"* up:", "* test:", "* bench:", "* chaos:"} {
		if !strings.Contains(string(out), name) {
			t.Errorf("task list lacks %q:\n%s", name, out)
		}
	}
}
