package main

import (
	"context"
	"io"
	"testing"

	"github.com/meshkafka/meshkafka/cmd/internal/clitest"
)

func TestHelp(t *testing.T) {
	clitest.Help(t, [][]string{{"--help"}, {"-data", "x", "-h"}}, func(args []string, out io.Writer) error {
		return run(context.Background(), args, func(string) string { return "" }, out, io.Discard)
	})
}
