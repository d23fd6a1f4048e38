// Package cputime measures the CPU time (user + system) this process has used, for the
// benchmarks that report CPU per record or per byte. Where it cannot be measured (not unix)
// Self returns 0, and callers leave the metric out.
//
// The package depends on the standard library only.
package cputime
