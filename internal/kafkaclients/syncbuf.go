package kafkaclients

import "github.com/meshkafka/meshkafka/internal/syncbuf"

// SyncBuffer is a goroutine-safe output buffer, e.g. a child process's stdout or stderr read
// while the process still writes to it.
type SyncBuffer = syncbuf.Buffer
