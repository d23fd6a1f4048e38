package meshkafka_test

// TestFranzGoSuiteSecure runs franz-go's own integration tests (package kgo's test binary,
// built from the module cache at the version in go.mod) against a gateway, as the issue asks:
// KGO_TEST_TLS (every suite client over TLS to an SSL listener, verifying the server with the
// CA that `gateway -init-secure` wrote), KGO_TEST_SCRAM / KGO_TEST_SCRAM_SEEDS (SCRAM-SHA-512
// on a SASL_PLAINTEXT listener, and a bad password refused) and KGO_TEST_OAUTH_SEEDS
// (OAUTHBEARER with unsigned tokens, which Kafka's default validator accepts: the gateway's
// -oauth-unsecured-tokens; an expired one must fail with invalid_token).
//
// By default it runs TestSCRAMAuth, TestSCRAMAuthBadCredentials, TestOAuthAuth, TestPing,
// TestClient_Produce and the share-group tests (KIP-932: TestShareGroupAckOnClose,
// TestShareGroupOffsetsAdmin, TestShareGroupETL; they skip unless ShareFetch and
// ShareAcknowledge v2 are advertised, and the check below fails a skip). MESHKAFKA_KGO_SUITE=full runs the whole suite (several minutes) except
// TestIssue769, which sets its own Dialer and so cannot run with KGO_TEST_TLS (franz-go's test
// dereferences the nil client), and TestConsumeRegex, which expects __consumer_offsets in
// Metadata (the gateway does not list internal topics).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshkafka/meshkafka/interop/cluster"
)

func TestFranzGoSuiteSecure(t *testing.T) {
	bin := bins(t)
	dir := t.TempDir()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/twmb/franz-go").Output()
	if err != nil {
		t.Fatalf("go list franz-go: %v", err)
	}
	kgoDir := filepath.Join(strings.TrimSpace(string(out)), "pkg", "kgo")
	suite := filepath.Join(dir, "kgo.test")
	if out, err := exec.Command("go", "test", "-c", "-o", suite, "github.com/twmb/franz-go/pkg/kgo").CombinedOutput(); err != nil {
		t.Fatalf("building franz-go's kgo tests: %v\n%s", err, out)
	}
	sec := filepath.Join(dir, "secure")
	if out, err := exec.Command(filepath.Join(bin, "gateway"), "-init-secure", sec).CombinedOutput(); err != nil {
		t.Fatalf("-init-secure: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(sec, "admin.password"))
	if err != nil {
		t.Fatal(err)
	}
	ssl, saslPlain := cluster.FreeTCP(t), cluster.FreeTCP(t)
	gw := startProc(t, "gateway", nil, filepath.Join(bin, "gateway"), "-data", filepath.Join(dir, "data"),
		"-listeners", "SSL://"+ssl+",SASL_PLAINTEXT://"+saslPlain, "-advertised-host", "127.0.0.1",
		"-tls-cert", filepath.Join(sec, "server.pem"), "-tls-key", filepath.Join(sec, "server.key"),
		"-sasl-users", filepath.Join(sec, "users"), "-oauth-unsecured-tokens")
	gw.WaitFor(t, "both listeners", 60*time.Second, func() bool {
		s := gw.Stdout.String()
		return strings.Contains(s, "listener SSL://"+ssl) && strings.Contains(s, "listener SASL_PLAINTEXT://"+saslPlain) &&
			strings.Contains(gw.Stderr.String(), "SASL user created")
	})

	args := []string{"-test.v", "-test.timeout", "20m"}
	want := []string{"TestSCRAMAuth", "TestSCRAMAuthBadCredentials", "TestOAuthAuth", "TestPing", "TestClient_Produce",
		"TestShareGroupAckOnClose", "TestShareGroupOffsetsAdmin", "TestShareGroupETL"}
	if os.Getenv("MESHKAFKA_KGO_SUITE") == "full" {
		args = append(args, "-test.skip", "^(TestIssue769|TestConsumeRegex)$")
	} else {
		args = append(args, "-test.run", "^("+strings.Join(want, "|")+")$")
	}
	cmd := exec.Command(suite, args...)
	cmd.Dir = kgoDir // some of its tests read their own source
	cmd.Env = append(os.Environ(), "KGO_SEEDS="+ssl, "KGO_TEST_RF=1", "KGO_TEST_RECORDS=10000",
		"KGO_TEST_TLS=ca:"+filepath.Join(sec, "ca.pem"),
		"KGO_TEST_SCRAM=admin:"+strings.TrimSpace(string(raw))+":512", "KGO_TEST_SCRAM_SEEDS="+saslPlain,
		"KGO_TEST_OAUTH_SEEDS="+saslPlain)
	res, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("franz-go's suite: %v\n%s\n%s", err, lastLines(string(res), 80), gw.Tail(30))
		// The share groups the suite made outlive it (franz-go cannot delete them): what the
		// gateway holds for each tells a lost record from an unfetched partition.
		t.Logf("share groups after the failure:\n%s", shareGroupDump(saslPlain, strings.TrimSpace(string(raw))))
		t.FailNow()
	}
	for _, name := range want {
		if !strings.Contains(string(res), "--- PASS: "+name+" ") {
			t.Errorf("%s did not pass (skipped?)", name)
		}
	}
	t.Logf("franz-go's suite: %d passed, %d skipped", strings.Count(string(res), "--- PASS: "), strings.Count(string(res), "--- SKIP: "))
}

// shareGroupDump describes every share group on the gateway at addr (SASL_PLAINTEXT, SCRAM
// admin): members and their assignments (ShareGroupDescribe) and each partition's start
// offset and lag (DescribeShareGroupOffsets), as JSON; a diagnostic, errors included.
func shareGroupDump(addr, pass string) string {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(scram.Auth{User: "admin", Pass: pass}.AsSha512Mechanism()))
	if err != nil {
		return err.Error()
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b strings.Builder
	show := func(what string, v any, err error) {
		j, _ := json.Marshal(v)
		fmt.Fprintf(&b, "%s: %s (err %v)\n", what, j, err)
	}
	list := kmsg.NewPtrListGroupsRequest()
	list.TypesFilter = []string{"share"}
	lr, err := list.RequestWith(ctx, cl)
	show("ListGroups", lr, err)
	if err != nil {
		return b.String()
	}
	for _, g := range lr.Groups {
		d := kmsg.NewPtrShareGroupDescribeRequest()
		d.GroupIDs = []string{g.Group}
		d.IncludeAuthorizedOperations = false
		dr, err := d.RequestWith(ctx, cl)
		show("ShareGroupDescribe "+g.Group, dr, err)
		o := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
		og := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
		og.GroupID = g.Group
		o.Groups = append(o.Groups, og)
		or, err := o.RequestWith(ctx, cl)
		show("DescribeShareGroupOffsets "+g.Group, or, err)
	}
	return b.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
