package meshkafka_test

// TestFranzGoSuite848 runs the KIP-848 variants of franz-go's own group tests (package kgo's
// test binary, built from the module cache at the version in go.mod) against our gateway, as
// issue #18 asks ("its group tests' 848 variants pass (not skip)"): TestGroupETL and
// TestTxnEtl (three-level consume → produce chains with members joining and leaving, with
// range/848, sticky/848 and sticky/848/static; TestTxnEtl in transactions) and
// TestGroupSimple/848. TestPauseIssueOct2023 runs too: it is sequential and makes the suite
// probe ApiVersions before the parallel tests decide whether to skip their 848 variants.
// Each named 848 variant must PASS, and no chain may have skipped its checks for a stale
// commit (franz-go's errSkipChecks848 path).
//
// It takes more than 20 minutes on the 2-core build machine (classic and 848 variants run side
// by side in franz-go's suite, every chain through the embedded broker's fsynced commits), so
// it runs only with MESHKAFKA_KGO848=1: `go tool task chaos` sets it. KGO_TEST_RECORDS is 5000.
//
// Deployments: "embedded" (cmd/gateway with its embedded broker and coordinator); with
// MESHKAFKA_KGO848_QUORUM=1 also "quorum" (three cmd/broker processes in one metadata quorum
// behind a mesh gateway: the coordinator runs on the quorum leader and commits offsets
// through the quorum). The quorum run is not on by default: on the shared 2-core machine
// (load average 30-39) liveness probes failed, the leadership moved, and the classic
// variants of the same tests failed there too (NOT_COORDINATOR and UNKNOWN_MEMBER_ID
// surfaced by kgo, CreateTopics timing out); the 848 chains then saw a record twice
// (membership is lost with the coordinator; see broker/group, "Durability").
//
// Not run: Test848RegexBrokerResolves, which needs an internal topic (__consumer_offsets) in
// Metadata; the gateway does not list internal topics (its regex part, broker-resolved
// regular topics, is covered by broker/group's tests).

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestFranzGoSuite848(t *testing.T) {
	if os.Getenv("MESHKAFKA_KGO848") != "1" {
		t.Skip("franz-go's KIP-848 group tests take over 20 minutes here: MESHKAFKA_KGO848=1 runs them (go tool task chaos does)")
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/twmb/franz-go").Output()
	if err != nil {
		t.Fatalf("go list franz-go: %v", err)
	}
	kgoDir := filepath.Join(strings.TrimSpace(string(out)), "pkg", "kgo")
	suite := filepath.Join(t.TempDir(), "kgo.test")
	if out, err := exec.Command("go", "test", "-c", "-o", suite, "github.com/twmb/franz-go/pkg/kgo").CombinedOutput(); err != nil {
		t.Fatalf("building franz-go's kgo tests: %v\n%s", err, out)
	}
	deploys := []string{"embedded"}
	if os.Getenv("MESHKAFKA_KGO848_QUORUM") == "1" {
		deploys = append(deploys, "quorum")
	}
	for _, deploy := range deploys {
		t.Run(deploy, func(t *testing.T) {
			g := newGatewayIdentity(t, "gateway")
			if deploy == "embedded" {
				g.startEmbedded(t)
			} else {
				g.startMesh(t, newQuorumBrokers(t, 3, g.id)...)
			}
			run848Suite(t, suite, kgoDir, g)
		})
	}
}

func run848Suite(t *testing.T, suite, kgoDir string, g *gatewayNode) {
	want := []string{
		"TestGroupETL/range/848", "TestGroupETL/sticky/848", "TestGroupETL/sticky/848/static",
		"TestTxnEtl/range/848", "TestTxnEtl/sticky/848", "TestTxnEtl/sticky/848/static",
		"TestGroupSimple/848",
	}
	run := "^(TestPauseIssueOct2023|TestGroupSimple|TestGroupETL|TestTxnEtl)$"
	if r := os.Getenv("MESHKAFKA_KGO848_RUN"); r != "" { // narrowing it down by hand
		run = r
		want = nil
	}
	cmd := exec.Command(suite, "-test.v", "-test.timeout", "20m", "-test.run", run)
	cmd.Dir = kgoDir // some of its tests read their own source
	cmd.Env = append(os.Environ(), "KGO_SEEDS="+g.addr, "KGO_TEST_RF=1", "KGO_TEST_RECORDS=5000")
	res, err := cmd.CombinedOutput()
	if dir := os.Getenv("MESHKAFKA_CHILD_LOG_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "kgo848-"+filepath.Base(t.Name())+".log"), res, 0o644)
	}
	if err != nil {
		t.Fatalf("franz-go's suite: %v\n%s\n%s", err, lastLines(string(res), 80), g.p.Tail(30))
	}
	for _, name := range want {
		if !strings.Contains(string(res), "--- PASS: "+name+" ") {
			t.Errorf("%s did not pass (skipped?)", name)
		}
	}
	if strings.Contains(string(res), "stale commit encountered, skipping validation") {
		t.Error("a chain skipped its checks after a STALE_MEMBER_EPOCH commit")
	}
	t.Logf("franz-go's suite: %d passed, %d skipped", strings.Count(string(res), "--- PASS: "), strings.Count(string(res), "--- SKIP: "))
}
