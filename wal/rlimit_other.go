//go:build !unix

package wal

func defaultMaxOpenFiles() int { return 512 }
