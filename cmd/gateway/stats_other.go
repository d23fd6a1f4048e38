//go:build !unix

package main

import (
	"io"

	"github.com/meshkafka/meshkafka/broker"
)

// printStatsOnSignal is a no-op where there is no SIGUSR1.
func printStatsOnSignal(*broker.Broker, io.Writer) (stop func()) { return func() {} }
