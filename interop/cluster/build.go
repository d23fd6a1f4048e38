package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// BinDirEnv names a directory that already holds the binaries (broker, gateway, relay, mesh); the
// harness then builds nothing.
const BinDirEnv = "MESHKAFKA_BIN_DIR"

// CPUProfileEnv, in a child's environment, names a directory where each SIGUSR2 the child
// receives starts a CPU profile and the next one stops it (cmd/internal/cli's hook of the same
// name).
const CPUProfileEnv = "MESHKAFKA_CPUPROFILE_DIR"

// commands are the binaries Bins builds, by package.
var commands = []string{"cmd/broker", "cmd/gateway", "cmd/relay", "cmd/mesh"}

var (
	buildOnce sync.Once
	buildDir  string // holds the binaries
	buildTemp string // removed by Cleanup when we created it
	buildErr  error
)

// Bins returns the directory holding the broker, gateway and relay binaries, building them
// from the module on first use in this test binary (or taking them from $MESHKAFKA_BIN_DIR).
// A test package that calls it removes the build with Cleanup from its TestMain.
func Bins(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		if d := os.Getenv(BinDirEnv); d != "" {
			buildDir = d
			return
		}
		d, err := os.MkdirTemp("", "meshkafka-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildTemp, buildDir = d, d
		args := []string{"build", "-o", d + string(filepath.Separator)}
		for _, c := range commands {
			args = append(args, "github.com/meshkafka/meshkafka/"+c)
		}
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build %s: %v\n%s", strings.Join(commands, " "), err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return buildDir
}

// Bin is the path of one built binary ("broker", "gateway" or "relay").
func Bin(tb testing.TB, name string) string {
	tb.Helper()
	return filepath.Join(Bins(tb), name)
}

// Cleanup removes the binaries Bins built (not a $MESHKAFKA_BIN_DIR). Call it from TestMain
// after m.Run.
func Cleanup() {
	if buildTemp != "" {
		os.RemoveAll(buildTemp)
	}
}

// Main is a TestMain for packages that run processes: it runs the tests, removes the build
// and, when everything passed, fails on goroutines left running.
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
