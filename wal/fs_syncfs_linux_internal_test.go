//go:build linux

package wal

import "testing"

func TestKernelAtLeast(t *testing.T) {
	for _, c := range []struct {
		rel  string
		want bool
	}{
		{"5.8.0", true}, {"5.10.0-28-amd64", true}, {"6.18.44-fc-v1300", true}, {"10.0", true},
		{"5.7.19", false}, {"4.19.0-27-amd64", false}, {"", false}, {"linux", false},
	} {
		if got := kernelAtLeast(c.rel, 5, 8); got != c.want {
			t.Errorf("kernelAtLeast(%q, 5, 8) = %v, want %v", c.rel, got, c.want)
		}
	}
}
