//go:build !linux

package wal_test

import "testing"

func benchDir(b *testing.B) string { return b.TempDir() }
