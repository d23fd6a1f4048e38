//go:build !linux

package waltest

import "testing"

// DiskDir returns tb.TempDir (only Linux tells tmpfs apart here).
func DiskDir(tb testing.TB) string { return tb.TempDir() }
