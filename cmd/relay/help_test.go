package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

// TestHelp: --help prints what the program is, how to run it and its flags on stdout, and
// returns flag.ErrHelp, which cli.Main turns into exit status 0.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}} {
		var out bytes.Buffer
		err := run(context.Background(), args, &out, io.Discard)
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%q: %v, want flag.ErrHelp", args, err)
		}
		if !strings.Contains(out.String(), "usage") || len(strings.TrimSpace(out.String())) < 80 {
			t.Fatalf("%q: help on stdout is too thin:\n%s", args, out.String())
		}
	}
}
