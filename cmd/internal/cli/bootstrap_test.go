package cli

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// flakySecurity fails its first fail DescribeUserScramCredentials calls, then knows no
// credentials and accepts every upsertion.
type flakySecurity struct {
	brokerop.SecurityService // the ops not used here panic
	fail, describes          int
	upserted                 []brokerop.ScramUpsertion
}

func (f *flakySecurity) DescribeUserScramCredentials(ctx context.Context, req *brokerop.DescribeUserScramCredentialsReq) (*brokerop.DescribeUserScramCredentialsResp, error) {
	f.describes++
	if f.describes <= f.fail {
		return nil, errors.New("brokers not reachable yet")
	}
	return &brokerop.DescribeUserScramCredentialsResp{}, nil
}

func (f *flakySecurity) AlterUserScramCredentials(ctx context.Context, req *brokerop.AlterUserScramCredentialsReq) (*brokerop.AlterUserScramCredentialsResp, error) {
	f.upserted = append(f.upserted, req.Upsertions...)
	return &brokerop.AlterUserScramCredentialsResp{}, nil
}

// TestBootstrapUsersUntilDone: failures are retried until the users are created; a context
// that ended stops the retries; no users means no call.
func TestBootstrapUsersUntilDone(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	users := []UserPassword{{User: "alice", Password: "pw"}}

	f := &flakySecurity{fail: 2}
	BootstrapUsersUntilDone(context.Background(), f, users, log, time.Microsecond)
	if f.describes != 3 || len(f.upserted) != 2 || f.upserted[0].Name != "alice" || f.upserted[1].Name != "alice" {
		t.Fatalf("after two failures: %d describes, upserted %+v; want 3 and alice's two mechanisms", f.describes, f.upserted)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f = &flakySecurity{fail: 1 << 30}
	BootstrapUsersUntilDone(ctx, f, users, log, time.Hour) // returns at once: ctx ended
	if f.describes != 1 || len(f.upserted) != 0 {
		t.Fatalf("ended context: %d describes, upserted %+v; want one try and nothing", f.describes, f.upserted)
	}

	f = &flakySecurity{}
	BootstrapUsersUntilDone(context.Background(), f, nil, log, time.Hour)
	if f.describes != 0 {
		t.Fatalf("no users: %d describes", f.describes)
	}
}
