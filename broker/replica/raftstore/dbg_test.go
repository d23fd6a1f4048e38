package raftstore_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/meshkafka/meshkafka/wal/waltest"
)

func TestDbg(t *testing.T) {
	seed := uint64(3)
	r := rand.New(rand.NewPCG(seed, 0x4af7))
	fs := newFS(t)
	hfs := waltest.NewHookFS(fs, nil)
	n := &node{t: t, fs: hfs, stamp: seed%2 == 0}
	n.mustOpen()
	w := &world{t: t, r: r, n: n, m: newModel(), term: 1}
	w.cands = []*model{w.m.clone()}
	for step := range 80 {
		if step >= 40 {
			hfs.SetBefore(func(op, name string) error { t.Logf("  %s %s", op, name); return nil })
		}
		if err := w.step(); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if step%40 == 39 {
			mode := r.IntN(3)
			t.Log("crash mode", mode)
			switch mode {
			case 0:
				fs.Crash()
			case 1:
				fs.CrashTear(r)
			default:
				fs.CrashReorder(r)
			}
			n.ws, n.l, n.s = nil, nil, nil
			n.mustOpen()
			if step == 79 {
				for _, f := range fs.Files() { b, _ := fs.ReadFile(f); t.Log(f, len(b)) }
				fi, _ := n.s.FirstIndex(); li, _ := n.s.LastIndex()
				t.Log(fi, li, n.l.StartOffset(), n.l.NextOffset())
				return
			}
			w.recovered(fmt.Sprintf("crash after step %d", step))
		}
	}
}
