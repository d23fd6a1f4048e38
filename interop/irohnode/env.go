package irohnode

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// RequiredEnv is the environment variable that turns every interop skip into a failure. The
// Taskfile's interop task (and so CI) sets it to 1.
const RequiredEnv = "INTEROP_REQUIRED"

// DriverDir returns the interop directory: the one holding driver/driver.mjs and
// node_modules/@number0/iroh. It is $IROH_DRIVER_DIR if set; otherwise the first of the working
// directory, its parents (each also tried with an "interop" child) and this source file's
// parent directory that has both.
func DriverDir() (string, error) {
	if d := os.Getenv("IROH_DRIVER_DIR"); d != "" {
		if isDriverDir(d) {
			return filepath.Abs(d)
		}
		return "", fmt.Errorf("irohnode: IROH_DRIVER_DIR=%s has no driver/driver.mjs", d)
	}
	var candidates []string
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			candidates = append(candidates, d, filepath.Join(d, "interop"))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		candidates = append(candidates, filepath.Dir(filepath.Dir(file)))
	}
	for _, c := range candidates {
		if isDriverDir(c) {
			return c, nil
		}
	}
	return "", errNoDriverDir
}

func isDriverDir(d string) bool {
	_, err := os.Stat(filepath.Join(d, "driver", "driver.mjs"))
	return err == nil
}

func findNode() (string, error) {
	if n := os.Getenv("IROH_NODE"); n != "" {
		return n, nil
	}
	p, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("irohnode: node (Node.js >= 20.3) not found in PATH")
	}
	return p, nil
}

// Check reports what is missing for running Rust iroh nodes here, or "" when nothing is:
// Node.js >= 20.3, the installed npm packages (npm ci in interop/), and a private network
// namespace whose only interface is an up loopback.
func Check() string {
	nodeBin, err := findNode()
	if err != nil {
		return "Node.js >= 20.3 is not installed (no `node` in PATH; set IROH_NODE to use another binary)"
	}
	out, err := exec.Command(nodeBin, "--version").Output()
	if err != nil {
		return fmt.Sprintf("%s --version failed: %v", nodeBin, err)
	}
	if v := strings.TrimSpace(string(out)); !nodeAtLeast(v, 20, 3) {
		return fmt.Sprintf("Node.js %s is too old: @number0/iroh 0.28.1 needs >= 20.3", v)
	}
	dir, err := DriverDir()
	if err != nil {
		return err.Error()
	}
	native := filepath.Join(dir, "node_modules", "@number0", "iroh-"+nativeSuffix(), "iroh."+nativeSuffix()+".node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@number0", "iroh", "package.json")); err != nil {
		return fmt.Sprintf("npm package @number0/iroh is not installed: run `npm ci` in %s (outside the namespace)", dir)
	}
	if _, err := os.Stat(native); err != nil {
		return fmt.Sprintf("the native iroh module %s is missing: run `npm ci` in %s on linux-x64 (glibc)", native, dir)
	}
	if msg := privateNamespace(); msg != "" {
		return msg
	}
	return ""
}

func nativeSuffix() string {
	arch := map[string]string{"amd64": "x64", "arm64": "arm64", "arm": "arm"}[runtime.GOARCH]
	switch runtime.GOOS {
	case "linux":
		return "linux-" + arch + "-gnu"
	case "darwin":
		return "darwin-" + arch
	}
	return runtime.GOOS + "-" + arch
}

func nodeAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// privateNamespace returns "" if the only network interface is loopback and it is up.
func privateNamespace() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Sprintf("cannot list network interfaces: %v", err)
	}
	var names []string
	loUp := false
	for _, i := range ifs {
		names = append(names, i.Name)
		if i.Flags&net.FlagLoopback != 0 && i.Flags&net.FlagUp != 0 {
			loUp = true
		}
	}
	if len(ifs) != 1 || ifs[0].Flags&net.FlagLoopback == 0 {
		how := "run `go tool task interop`, or: unshare -n sh -c 'ip link set lo up && ./interop.test'"
		if _, err := exec.LookPath("unshare"); err != nil {
			how = "and unshare (util-linux) is not installed to make one"
		}
		return fmt.Sprintf("not inside a private network namespace (interfaces: %s); the Rust node would reach the internet; %s",
			strings.Join(names, ", "), how)
	}
	if !loUp {
		return "loopback is down in this network namespace: run `ip link set lo up` first"
	}
	return ""
}

// RequireNamespace skips the test, with a message that names exactly what is missing, unless
// Rust iroh nodes can run here (see [Check]). With INTEROP_REQUIRED=1 it fails the test instead.
func RequireNamespace(t testing.TB) {
	t.Helper()
	Require(t, Check())
}

// Require skips the test with msg (an interop requirement not met here), unless msg is empty;
// with INTEROP_REQUIRED=1 it fails the test instead.
func Require(t testing.TB, msg string) {
	t.Helper()
	if msg == "" {
		return
	}
	if os.Getenv(RequiredEnv) == "1" {
		t.Fatalf("interop: %s (%s=1, so this is a failure, not a skip)", msg, RequiredEnv)
	}
	t.Skipf("interop: %s", msg)
}

// EnableLoopbackMulticast makes mDNS work on loopback inside the private namespace: it turns on
// the MULTICAST flag of lo and routes 224.0.0.0/4 to lo in the local table (the main table stays
// empty). It refuses to run outside a private namespace. Running it twice is harmless.
func EnableLoopbackMulticast() error {
	if msg := privateNamespace(); msg != "" {
		return fmt.Errorf("irohnode: refusing to change routes: %s", msg)
	}
	if out, err := exec.Command("ip", "link", "set", "lo", "multicast", "on").CombinedOutput(); err != nil {
		return fmt.Errorf("irohnode: ip link set lo multicast on: %v: %s", err, out)
	}
	out, err := exec.Command("ip", "route", "replace", "224.0.0.0/4", "dev", "lo", "table", "local").CombinedOutput()
	if err != nil {
		return fmt.Errorf("irohnode: ip route replace 224.0.0.0/4 dev lo table local: %v: %s", err, out)
	}
	return nil
}
