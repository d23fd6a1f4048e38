// Package clitest holds test helpers shared by the binaries' tests.
package clitest

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

// Help checks that each argument list asks for help: run returns flag.ErrHelp (which
// cli.Main turns into exit status 0) after printing a usage with some substance on out.
func Help(t *testing.T, cases [][]string, run func(args []string, out io.Writer) error) {
	t.Helper()
	for _, args := range cases {
		var out bytes.Buffer
		if err := run(args, &out); !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%q: %v, want flag.ErrHelp", args, err)
		}
		if !strings.Contains(out.String(), "usage") || len(strings.TrimSpace(out.String())) < 80 {
			t.Fatalf("%q: help on stdout is too thin:\n%s", args, out.String())
		}
	}
}
