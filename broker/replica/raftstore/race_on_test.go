//go:build race

package raftstore_test

// raceOn: the race detector slows these tests ~30x; the long ones run smaller under it.
const raceOn = true
