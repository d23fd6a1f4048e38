package cluster

import (
	"context"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/clock"
)

// Read-ahead for sequential consumers over the mesh.
//
// A consumer catching up reads a partition in a chain of Fetches, each starting just past the
// records the previous one returned, and a Kafka client sends the next Fetch only after it
// decoded the last answer. Over the mesh every Fetch then pays the broker's read and the
// QUIC transfer while the client waits, and the client's decoding while the broker waits.
// So when a Fetch answer shows a backlog (some partition filled at least half its byte
// budget), Broker.FetchPooled sends the next Fetch of the chain at once: same partitions,
// budgets and isolation level, offsets just past the returned batches, no wait. A goroutine
// per read-ahead reads its answer into a pooled payload as it arrives (aheadCall.start,
// over the carrier's Caller.StartFetch).
// When the client's next Fetch is exactly that request (same partitions, offsets, budgets and
// isolation level, the partitions in any order when the total budget cannot bind), it takes
// the read-ahead's answer if that has at least MinBytes; otherwise, or for any other request,
// the Fetch is sent as usual.
//
// The taken answer is what a Fetch at those offsets returned a moment earlier: records are
// immutable once written, so only the high watermark and log start offset may lag, as they
// may for any answer in flight. Answers not yet taken hold memory (and, while they arrive, the
// connection's flow-control credit), so read-aheads are bounded per broker: at most
// readAheadMax of them, whose byte budgets (the most each answer can hold) add up to at most
// readAheadBytes, well inside the connection's receive window, so produces and other calls on
// the connection are never starved. One not taken within readAheadTTL is cancelled: its
// stream is reset, its reader returns, and its payload goes back to the pool when it is
// dropped (by the next Fetch to this broker, or the next read-ahead).
const (
	readAheadMax   = 4
	readAheadBytes = 8 << 20
	readAheadTTL   = time.Second
)

// Broker is one broker as the gateway sees it: the carrier's Caller to it, traced
// (brokermesh.TraceCalls), with the read-aheads of sequential consumers on it (FetchPooled).
type Broker struct {
	brokerop.Service // the traced Caller
	caller           *brokermesh.Caller
	ahead            readAheads
	clk              clock.Clock // ages read-aheads (readAheadTTL); tests set a fake one
	live             liveness    // up or down, as the probes found (liveness.go)
}

// NewBroker returns the gateway's view of the broker c calls.
func NewBroker(c *brokermesh.Caller) *Broker {
	return &Broker{Service: brokermesh.TraceCalls(c, c.Remote()), caller: c, clk: clock.Real()}
}

// aheadCall is a read-ahead Fetch whose answer has not been taken yet.
type aheadCall struct {
	key     string
	budget  int // the most bytes its answer can hold
	started time.Time
	cancel  context.CancelFunc
	done    chan struct{} // closed once resp, release and err are set
	resp    *brokerop.FetchResp
	release func() // gives the answer's pooled payload back (nil on error)
	err     error
}

// start reads the answer as it arrives, on a goroutine of its own that ends with the read:
// when the answer is in, or at once when the call is cancelled (taken, dropped, or
// readAheadTTL passed: the stream is reset). Reading early moves the copy out of the stream
// off the path of the Fetch that takes the answer, and gives the connection's flow-control
// credit back as the bytes arrive.
func (a *aheadCall) start(recv func() (*brokerop.FetchResp, func(), error)) {
	a.done = make(chan struct{})
	go func() {
		defer close(a.done)
		a.resp, a.release, a.err = recv()
	}()
}

// readAheads are a caller's outstanding read-aheads, oldest first.
type readAheads struct {
	mu    sync.Mutex
	calls []*aheadCall // guarded by mu
	taken atomic.Int64 // read-aheads whose answer served a Fetch
}

// take removes and returns the read-ahead for key, if any; expired ones are dropped on the way.
func (r *readAheads) take(key string, now time.Time) *aheadCall {
	var expired []*aheadCall
	var found *aheadCall
	r.mu.Lock()
	kept := r.calls[:0]
	for _, a := range r.calls {
		switch {
		case found == nil && a.key == key:
			found = a
		case now.Sub(a.started) > readAheadTTL:
			expired = append(expired, a)
		default:
			kept = append(kept, a)
		}
	}
	clear(r.calls[len(kept):])
	r.calls = kept
	r.mu.Unlock()
	for _, a := range expired {
		a.drop()
	}
	return found
}

// add records a, first dropping the oldest ones as needed to stay within readAheadMax calls
// and readAheadBytes of budget (a's budget is at most readAheadBytes).
func (r *readAheads) add(a *aheadCall) {
	var dropped []*aheadCall
	r.mu.Lock()
	held := a.budget
	for _, c := range r.calls {
		held += c.budget
	}
	for len(r.calls) > 0 && (len(r.calls) >= readAheadMax || held > readAheadBytes) {
		old := r.calls[0]
		dropped = append(dropped, old)
		held -= old.budget
		copy(r.calls, r.calls[1:])
		r.calls[len(r.calls)-1] = nil
		r.calls = r.calls[:len(r.calls)-1]
	}
	r.calls = append(r.calls, a)
	r.mu.Unlock()
	for _, d := range dropped {
		d.drop()
	}
}

// drop cancels a read-ahead nobody takes: the stream is reset and, once its reader is done,
// its payload given back.
func (a *aheadCall) drop() {
	a.cancel()
	<-a.done
	if a.release != nil {
		a.release()
	}
}

// finish waits for the read-ahead's answer.
func (a *aheadCall) finish() (*brokerop.FetchResp, error) {
	<-a.done
	a.cancel()
	if a.err != nil {
		return nil, a.err
	}
	return a.resp, nil
}

// FetchPooled is the carrier's FetchPooled (the answer's record bytes live in a pooled
// payload until release is called, exactly once, after resp is no longer used) with
// read-ahead: it takes a matching read-ahead's answer (see the comment on readAheadMax) and
// starts the next read-ahead when the answer shows a backlog.
func (c *Broker) FetchPooled(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, func(), error) {
	if a := c.ahead.take(fetchKey(req), c.clk.Now()); a != nil {
		resp, err := a.finish()
		if err == nil && answerBytes(resp) >= max(int(req.MinBytes), 1) && alignAnswer(req, resp) {
			c.ahead.taken.Add(1)
			c.readAhead(ctx, req, resp)
			return resp, a.release, nil
		}
		if err == nil {
			a.release()
		}
	}
	resp, release, err := c.Service.FetchPooled(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	c.readAhead(ctx, req, resp)
	return resp, release, nil
}

// readAhead sends the Fetch that continues req after resp, if resp shows a backlog.
func (c *Broker) readAhead(ctx context.Context, req *brokerop.FetchReq, resp *brokerop.FetchResp) {
	next, ok := nextFetch(req, resp)
	if !ok {
		return
	}
	budget := fetchBudget(next)
	if budget > readAheadBytes {
		return
	}
	// The read-ahead belongs to the request that prompted it (its trace) but not to its
	// lifetime: it ends when taken, dropped or after readAheadTTL.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readAheadTTL)
	a := &aheadCall{key: fetchKey(next), budget: budget, started: c.clk.Now(), cancel: cancel}
	a.start(c.caller.StartFetch(actx, next))
	c.ahead.add(a)
}

// nextFetch returns the Fetch continuing req after resp, when resp has no errors and some
// partition filled at least half its budget (a backlog). Offsets move past the last whole
// record batch each partition returned.
func nextFetch(req *brokerop.FetchReq, resp *brokerop.FetchResp) (*brokerop.FetchReq, bool) {
	if len(resp.Partitions) != len(req.Partitions) {
		return nil, false
	}
	backlog := false
	next := &brokerop.FetchReq{MaxBytes: req.MaxBytes, IsolationLevel: req.IsolationLevel, Partitions: make([]brokerop.FetchPartition, len(req.Partitions))}
	for i, p := range req.Partitions {
		r := &resp.Partitions[i]
		if r.ErrorCode != 0 || r.Topic != p.Topic || r.Partition != p.Partition {
			return nil, false
		}
		np := p
		if len(r.Records) > 0 {
			end, ok := batchesEnd(r.Records)
			if !ok || end <= p.Offset {
				return nil, false
			}
			np.Offset = end
			if p.MaxBytes > 0 && len(r.Records) >= int(p.MaxBytes)/2 {
				backlog = true
			}
		}
		next.Partitions[i] = np
	}
	return next, backlog
}

// batchesEnd returns the offset after the last of the whole v2 record batches in records;
// ok is false unless records is exactly such batches.
func batchesEnd(records []byte) (end int64, ok bool) {
	const headerLen = 61 // v2 batch header; batchLength counts from byte 12
	for len(records) > 0 {
		if len(records) < headerLen || records[16] != 2 {
			return 0, false
		}
		n := 12 + int64(int32(binary.BigEndian.Uint32(records[8:12])))
		if n < headerLen || n > int64(len(records)) {
			return 0, false
		}
		end = int64(binary.BigEndian.Uint64(records[0:8])) + int64(int32(binary.BigEndian.Uint32(records[23:27]))) + 1
		records = records[n:]
	}
	return end, true
}

// fetchKey identifies a Fetch by what its answer depends on besides time: partitions,
// offsets, budgets and isolation level (not its wait or MinBytes). Clients rotate the order
// of the partitions from Fetch to Fetch (kgo does, so that no partition is always last to
// get the total budget); when the total budget cannot bind (the partitions' budgets add up
// to no more) the order does not change the answer, and the key ignores it.
func fetchKey(req *brokerop.FetchReq) string {
	parts := make([]string, len(req.Partitions))
	sum := 0
	for i, p := range req.Partitions {
		parts[i] = strconv.Quote(p.Topic) + ":" + strconv.Itoa(int(p.Partition)) + ":" +
			strconv.FormatInt(p.Offset, 10) + ":" + strconv.Itoa(int(p.MaxBytes))
		sum += int(max(p.MaxBytes, 0))
	}
	order := "ordered"
	if req.MaxBytes <= 0 || sum <= int(req.MaxBytes) {
		order = "any"
		slices.Sort(parts)
	}
	return strconv.Itoa(int(req.MaxBytes)) + "/" + strconv.Itoa(int(req.IsolationLevel)) + "/" + order + "/" + strings.Join(parts, "/")
}

// alignAnswer puts resp's partitions in req's order (a read-ahead taken by a Fetch that
// names the same partitions in another order); false if they are not the same partitions.
func alignAnswer(req *brokerop.FetchReq, resp *brokerop.FetchResp) bool {
	if len(resp.Partitions) != len(req.Partitions) {
		return false
	}
	same := true
	for i := range req.Partitions {
		if resp.Partitions[i].Topic != req.Partitions[i].Topic || resp.Partitions[i].Partition != req.Partitions[i].Partition {
			same = false
			break
		}
	}
	if same {
		return true
	}
	at := make(map[tp]int, len(resp.Partitions))
	for i, r := range resp.Partitions {
		at[tp{r.Topic, r.Partition}] = i
	}
	out := make([]brokerop.FetchPartitionResp, len(req.Partitions))
	for i, p := range req.Partitions {
		j, ok := at[tp{p.Topic, p.Partition}]
		if !ok {
			return false
		}
		out[i] = resp.Partitions[j]
	}
	resp.Partitions = out
	return true
}

// fetchBudget is the most record bytes an answer to req can hold: the request's budget or the
// partitions' together, whichever is smaller (Kafka lets the first batch exceed them; a
// broker's batches are bounded by max.message.bytes, small next to readAheadBytes).
func fetchBudget(req *brokerop.FetchReq) int {
	sum := 0
	for _, p := range req.Partitions {
		sum += int(max(p.MaxBytes, 0))
	}
	if req.MaxBytes > 0 {
		sum = min(sum, int(req.MaxBytes))
	}
	return sum
}

func answerBytes(resp *brokerop.FetchResp) int {
	n := 0
	for i := range resp.Partitions {
		n += len(resp.Partitions[i].Records)
	}
	return n
}
