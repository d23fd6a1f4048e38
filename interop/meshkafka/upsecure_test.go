package meshkafka_test

// TestUpSecure runs scripts/up-secure.sh (what `go tool task up-secure` runs) on free loopback
// ports with the binaries built by this package, and checks what its README section
// promises: SASL_SSL only, a CA under $DATA/secure/ca.pem that verifies the server, the admin
// password in $DATA/secure/admin.password (mode 0600), SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN
// with kgo (produce, a consumer group, admin calls), kafka-go, kcat, kafkajs and
// confluent-kafka-python (the last three when installed), adding a user and an ACL as admin,
// the ACL deciding what that user may do, and a clean stop on SIGTERM.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	kafkaplain "github.com/segmentio/kafka-go/sasl/plain"
	kafkascram "github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshkafka/meshkafka/interop/cluster"
)

func TestUpSecure(t *testing.T) {
	bin := bins(t)
	data := t.TempDir()
	listen, status := cluster.FreeTCP(t), cluster.FreeTCP(t)
	script, err := filepath.Abs("../../scripts/up-secure.sh")
	if err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "up-secure", []string{"DATA=" + data, "BROKER_BIND=" + cluster.FreeUDP(t), "SECURE_LISTEN=" + listen, "STATUS_ADDR=" + status,
		"BIN=" + bin, "BUILD=0", "GOMAXPROCS=1"}, "sh", script)
	// The script's children die with it on SIGTERM; a failing test still stops them before
	// the script is killed (cleanups run last-in first-out).
	t.Cleanup(func() { p.SignalAndWait(syscall.SIGTERM, 15*time.Second) })
	p.WaitFor(t, "the SASL_SSL listener", 60*time.Second, func() bool {
		return strings.Contains(p.Stdout.String(), "listener SASL_SSL://"+listen) && strings.Contains(p.Stderr.String(), "SASL user created")
	})
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	step("listening")
	if strings.Contains(p.Stdout.String(), "listener PLAINTEXT") {
		t.Fatalf("a plaintext listener:\n%s", p.Logs())
	}
	// The status page the task serves by default (here on a free port: STATUS_ADDR).
	if resp, err := http.Get("http://" + status + "/"); err != nil {
		t.Errorf("status page: %v", err)
	} else {
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "meshkafka gateway") || !strings.Contains(string(page), `id="brokers"`) {
			t.Errorf("status page: %s\n%.2000s", resp.Status, page)
		}
	}

	sec := filepath.Join(data, "secure")
	fi, err := os.Stat(filepath.Join(sec, "admin.password"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.password: %v, mode %v; want 0600", err, fi.Mode())
	}
	for _, f := range []string{"server.key", "ca.key", "users"} {
		if fi, err := os.Stat(filepath.Join(sec, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, want mode 0600", f, err)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(sec, "admin.password"))
	pass := strings.TrimSpace(string(raw))
	caPEM, err := os.ReadFile(filepath.Join(sec, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	// The server name clients use: "localhost" (the advertised host is the listen host).
	tlsCfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	client := func(m sasl.Mechanism, opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(listen), kgo.DialTLSConfig(tlsCfg), kgo.SASL(m),
			kgo.RequestRetries(3)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	admin := map[string]sasl.Mechanism{
		"SCRAM-SHA-256": scram.Auth{User: "admin", Pass: pass}.AsSha256Mechanism(),
		"SCRAM-SHA-512": scram.Auth{User: "admin", Pass: pass}.AsSha512Mechanism(),
		"PLAIN":         plain.Auth{User: "admin", Pass: pass}.AsMechanism(),
	}
	adm := kadm.NewClient(client(admin["SCRAM-SHA-512"]))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "secure-orders"); err != nil {
		t.Fatalf("create topic as admin: %v\n%s", err, p.Tail(30))
	}
	for name, m := range admin {
		cl := client(m)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "secure-orders", Value: []byte(name)}).FirstErr(); err != nil {
			t.Fatalf("produce as admin with %s: %v", name, err)
		}
	}

	// A kgo consumer group (SCRAM-SHA-256) reads back what the three mechanisms wrote.
	grp := client(admin["SCRAM-SHA-256"], kgo.ConsumerGroup("kgo-group"), kgo.ConsumeTopics("secure-orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for read := 0; read < len(admin); {
		fs := grp.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("kgo group consume: %v", err)
		}
		read += fs.NumRecords()
	}
	if err := grp.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("kgo group commit: %v", err)
	}
	step("admin produced with every mechanism")
	// Wrong password: SASL_AUTHENTICATION_FAILED. Plaintext on the port: closed.
	bad := client(scram.Auth{User: "admin", Pass: "guess"}.AsSha256Mechanism(), kgo.RequestRetries(0))
	if err := bad.Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("wrong password: %v", err)
	}
	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x01\x00\x00")) // ApiVersions v0, in plaintext
	answer, _ := io.ReadAll(c)
	c.Close()
	if len(answer) > 0 && answer[0] != 0x15 { // at most a TLS alert record, then closed
		t.Fatalf("plaintext ApiVersions on the SASL_SSL port answered %q", answer)
	}

	// Add a user and an ACL as the README says (kadm here; kafka-configs / kafka-acls do the
	// same API calls): carol may write and read secure-orders and nothing else.
	if res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "carol", Mechanism: kadm.ScramSha512, Iterations: 8192, Password: "carol-secret"}}); err != nil || res.Error() != nil {
		t.Fatalf("add user: %v %v", err, res.Error())
	}
	acl := kadm.NewACLs().Allow("User:carol").Topics("secure-orders").Operations(kadm.OpWrite, kadm.OpRead, kadm.OpDescribe).
		ResourcePatternType(kadm.ACLPatternLiteral)
	if res, err := adm.CreateACLs(ctx, acl); err != nil || firstACLErr(res) != nil {
		t.Fatalf("create ACL: %v %v", err, firstACLErr(res))
	}
	carol := client(scram.Auth{User: "carol", Pass: "carol-secret"}.AsSha512Mechanism(), kgo.RecordRetries(2))
	if err := carol.ProduceSync(ctx, &kgo.Record{Topic: "secure-orders", Value: []byte("carol")}).FirstErr(); err != nil {
		t.Fatalf("carol produce with the ACL: %v", err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "secure-other"); err != nil {
		t.Fatal(err)
	}
	if err := carol.ProduceSync(ctx, &kgo.Record{Topic: "secure-other", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("carol produce without an ACL: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	step("user and ACL checked")
	// kafka-go with PLAIN over TLS reads what was written.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{listen}, Topic: "secure-orders", Partition: 0, MaxWait: 200 * time.Millisecond,
		Dialer: &kafka.Dialer{Timeout: 10 * time.Second, TLS: tlsCfg, SASLMechanism: kafkaplain.Mechanism{Username: "admin", Password: pass}}})
	defer r.Close()
	got := map[string]bool{}
	for len(got) < 4 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("kafka-go read: %v (have %v)", err, got)
		}
		got[string(m.Value)] = true
	}
	if !got["carol"] || !got["PLAIN"] {
		t.Fatalf("kafka-go read %v", got)
	}

	// kafka-go with SCRAM-SHA-512: an admin call, a produce, and a consumer group.
	scramMech, err := kafkascram.Mechanism(kafkascram.SHA512, "admin", pass)
	if err != nil {
		t.Fatal(err)
	}
	transport := &kafka.Transport{TLS: tlsCfg, SASL: scramMech}
	kc := &kafka.Client{Addr: kafka.TCP(listen), Transport: transport, Timeout: 30 * time.Second}
	if res, err := kc.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: "kafkago-topic", NumPartitions: 2, ReplicationFactor: 1}}}); err != nil || res.Errors["kafkago-topic"] != nil {
		t.Fatalf("kafka-go CreateTopics: %v %v", err, res)
	}
	w := &kafka.Writer{Addr: kafka.TCP(listen), Topic: "kafkago-topic", Transport: transport, RequiredAcks: kafka.RequireAll, Balancer: &kafka.Hash{}}
	var msgs []kafka.Message
	for i := range 6 {
		msgs = append(msgs, kafka.Message{Key: []byte{byte('a' + i)}, Value: []byte{byte('0' + i)}})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("kafka-go write: %v", err)
	}
	w.Close()
	gr := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{listen}, Topic: "kafkago-topic", GroupID: "kafkago-group", MaxWait: 200 * time.Millisecond,
		StartOffset: kafka.FirstOffset, Dialer: &kafka.Dialer{Timeout: 10 * time.Second, TLS: tlsCfg, SASLMechanism: scramMech}})
	defer gr.Close()
	seen := map[string]bool{}
	for len(seen) < len(msgs) {
		m, err := gr.ReadMessage(ctx) // commits through the group
		if err != nil {
			t.Fatalf("kafka-go group read: %v (have %v)", err, seen)
		}
		seen[string(m.Value)] = true
	}
	step("kafka-go read")
	if kcat, err := exec.LookPath("kcat"); err == nil {
		conf := []string{"-b", listen, "-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location=" + filepath.Join(sec, "ca.pem"),
			"-X", "sasl.mechanisms=SCRAM-SHA-256", "-X", "sasl.username=admin", "-X", "sasl.password=" + pass}
		cmd := exec.CommandContext(ctx, kcat, append(conf, "-P", "-t", "secure-orders")...)
		cmd.Stdin = strings.NewReader("from-kcat\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat produce: %v\n%s", err, out)
		}
		out, err := exec.CommandContext(ctx, kcat, append(conf, "-C", "-t", "secure-orders", "-o", "beginning", "-e", "-q")...).Output()
		if err != nil || !strings.Contains(string(out), "from-kcat") || !strings.Contains(string(out), "carol") {
			t.Fatalf("kcat consume: %v\n%s", err, out)
		}
		// A balanced consumer group (-G), with SCRAM-SHA-512; metadata with PLAIN.
		conf512 := append(slices.Clone(conf[:len(conf)-6]), "-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=admin", "-X", "sasl.password="+pass)
		out, err = exec.CommandContext(ctx, kcat, append(conf512, "-X", "auto.offset.reset=earliest", "-G", "kcat-group", "-e", "-q", "secure-orders")...).Output()
		if err != nil || !strings.Contains(string(out), "from-kcat") {
			t.Fatalf("kcat group consume: %v\n%s", err, out)
		}
		confPlain := append(slices.Clone(conf[:len(conf)-6]), "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=admin", "-X", "sasl.password="+pass)
		if out, err := exec.CommandContext(ctx, kcat, append(confPlain, "-L", "-t", "secure-orders")...).CombinedOutput(); err != nil || !strings.Contains(string(out), `topic "secure-orders"`) {
			t.Fatalf("kcat PLAIN metadata: %v\n%s", err, out)
		}
	} else {
		t.Log("kcat not installed: skipped its part")
	}

	step("kcat done")

	// kafkajs and confluent-kafka-python (interop/secureclients): admin calls, produce, and a
	// consumer group, over SASL_SSL with the generated CA and password.
	secureClients, _ := filepath.Abs("../secureclients")
	clientEnv := func(mech, topic string) []string {
		return append(os.Environ(), "BROKER="+listen, "CA="+filepath.Join(sec, "ca.pem"), "USER=admin", "PASS="+pass,
			"MECH="+mech, "TOPIC="+topic, "GROUP="+topic+"-group")
	}
	runClient := func(name string, env []string, bin string, args ...string) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env, cmd.Dir = env, secureClients
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "ok 10") {
			t.Fatalf("%s: %v\n%s\n%s", name, err, out, p.Tail(20))
		}
		step(name + " done")
	}
	if node, err := exec.LookPath("node"); err == nil && exists(filepath.Join(secureClients, "node_modules", "kafkajs")) {
		runClient("kafkajs", clientEnv("scram-sha-512", "kafkajs-topic"), node, "check.cjs")
		runClient("kafkajs PLAIN", clientEnv("plain", "kafkajs-plain"), node, "check.cjs")
	} else {
		t.Log("kafkajs not installed (cd interop/secureclients && npm ci): skipped")
	}
	if py := cluster.PythonWith("confluent_kafka"); py != "" {
		runClient("confluent-kafka-python", clientEnv("SCRAM-SHA-256", "confluent-topic"), py, "check.py")
	} else {
		t.Log("confluent-kafka-python not installed (apt-get install python3-confluent-kafka): skipped")
	}
	// SIGTERM stops the script and both processes; the port is free again.
	if err := p.Stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, p.Tail(20))
	}
	if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
		c.Close()
		t.Fatal("the SASL_SSL port still accepts after SIGTERM")
	}
}

func firstACLErr(res kadm.CreateACLsResults) error {
	for _, r := range res {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
