// Package readme holds the test that runs the README's own quick-start commands, taken from
// README.md (not copied into the test), on a fresh clone with an empty data directory, inside
// a private network namespace: `go tool task up`, the kcat lines, a second `up` on the busy
// port (refused, non-zero exit), a SIGTERM to the `go` process the user started, alone (it
// exits 0, both servers report exit status 0, no process and no listening socket is left),
// and `up` again stopped by SIGINT to its process group (Ctrl-C), with the same checks.
package readme
