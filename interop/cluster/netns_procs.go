package cluster

import (
	"os"
	"strings"
)

// Procs lists the live processes in the namespace other than its holder, as "pid comm" (a
// zombie waiting for its parent counts as gone): what a test checks to be empty after it
// stopped everything it started there.
func (n *Netns) Procs() ([]string, error) {
	want, err := os.Readlink(n.path())
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var left []string
	for _, e := range ents {
		pid := e.Name()
		if pid == n.Pid() || pid[0] < '0' || pid[0] > '9' {
			continue
		}
		if l, err := os.Readlink("/proc/" + pid + "/ns/net"); err != nil || l != want {
			continue
		}
		if st, err := os.ReadFile("/proc/" + pid + "/stat"); err == nil && strings.Contains(string(st), ") Z ") {
			continue
		}
		comm, _ := os.ReadFile("/proc/" + pid + "/comm")
		left = append(left, pid+" "+strings.TrimSpace(string(comm)))
	}
	return left, nil
}
