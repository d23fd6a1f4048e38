package cluster

import (
	"os"
	"os/exec"
	"strconv"
)

// PythonWith returns a python3 that can import module ("" if none): the one on PATH, or
// Debian's (python3-confluent-kafka installs there).
func PythonWith(module string) string {
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if path, err := exec.LookPath(py); err == nil && exec.Command(path, "-c", "import "+module).Run() == nil {
			return path
		}
	}
	return ""
}

// EnvCount is the positive whole number in the environment variable name (a test's knob: how
// many cycles, records, megabytes), else def.
func EnvCount(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
