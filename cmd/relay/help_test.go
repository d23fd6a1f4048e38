package main

import (
	"context"
	"io"
	"testing"

	"github.com/meshkafka/meshkafka/cmd/internal/clitest"
)

func TestHelp(t *testing.T) {
	clitest.Help(t, [][]string{{"--help"}, {"-h"}}, func(args []string, out io.Writer) error {
		return run(context.Background(), args, out, io.Discard)
	})
}
