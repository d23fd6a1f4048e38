// Package readme holds the test that runs the README's own quick-start commands, taken from
// README.md (not copied into the test), on a fresh clone with an empty data directory, inside
// a private network namespace: `go tool task up`, the kcat lines, a second `up` on the busy
// port, and a SIGTERM to the task's process group.
package readme
