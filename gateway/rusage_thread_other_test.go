//go:build !linux

package gateway

// threadCPU is not measured here (client-cpu-ns/op then reads 0).
func threadCPU() int64 { return 0 }
