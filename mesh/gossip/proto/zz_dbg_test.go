package proto

import (
	"fmt"
	"testing"
)

func TestDbg(t *testing.T) {
	for seed := uint64(100); seed < 160; seed++ {
		s := runChurnSim(t, seed, 120)
		for _, c := range s.components() {
			if len(c) < 5 {
				for _, x := range c {
					n := s.nodes[x]
					fmt.Println("seed", seed, "node", x, "active", n.st.ActiveView(s.topic), "passive", n.st.PassiveView(s.topic), "pending", n.st.topics[s.topic].swarm.pending, "inc", n.inc)
				}
			}
		}
	}
}
