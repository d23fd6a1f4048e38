//go:build !unix

package broker

// processCPU is not measured here (cpu-ns/batch then reads 0).
func processCPU() int64 { return 0 }
