//go:build !race

package raftstore_test

const raceOn = false
