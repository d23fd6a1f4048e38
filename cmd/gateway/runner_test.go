package main

import (
	"bufio"
	"io"
	"strings"
	"testing"
)

// runGateway runs the command in-process with the environment vars and waits until its
// stdout has shown a line starting with each of prefixes (leading spaces ignored); it returns
// the first word after each prefix. The command is stopped (and must return nil) when the test
// ends.
func runGateway(t *testing.T, vars map[string]string, prefixes ...string) map[string]string {
	t.Helper()
	dir := t.TempDir() // before the cleanup below, so it is removed after the gateway stopped
	pr, result, cancel := goRun(dir, vars)
	t.Cleanup(func() {
		cancel()
		if err := <-result; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	found := map[string]string{}
	sc := bufio.NewScanner(pr)
	for len(found) < len(prefixes) && sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		for _, p := range prefixes {
			if rest, ok := strings.CutPrefix(line, p); ok {
				if _, seen := found[p]; !seen {
					found[p] = strings.Fields(rest + " ")[0]
				}
			}
		}
	}
	go io.Copy(io.Discard, pr)
	if len(found) < len(prefixes) {
		t.Fatalf("the gateway printed only %v of %q", found, prefixes)
	}
	return found
}
