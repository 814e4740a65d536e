package bridge_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/internal/redistest"
)

// settled is what a pipe's callback saw of one batch; a PipeBatch is
// valid during the callback only.
type settled struct {
	cookie           int64
	seqs, failed     []uint64
	unknown          int
	reasons          []string
	written, replied int64
	err              error
}

// pipeRecorder records a pipe's callbacks, in order.
type pipeRecorder struct {
	mu  sync.Mutex
	got []settled
}

func (r *pipeRecorder) done(pb *bridge.PipeBatch) {
	s := settled{cookie: pb.Cookie, seqs: append([]uint64(nil), pb.Seqs...), failed: append([]uint64(nil), pb.Failed()...),
		unknown: pb.Unknown(), written: pb.WrittenNs, replied: pb.RepliedNs, err: pb.Err}
	for _, e := range pb.FailedErrors() {
		s.reasons = append(s.reasons, bridge.ErrorReason(e))
	}
	r.mu.Lock()
	r.got = append(r.got, s)
	r.mu.Unlock()
}

func (r *pipeRecorder) batches() []settled {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]settled(nil), r.got...)
}

// send adds n events to bt and sends them with cookie, returning their
// sequence numbers.
func send(t *testing.T, p *bridge.Pipe, bt *bridge.Batch, n int, cookie int64) []uint64 {
	t.Helper()
	var seqs []uint64
	for range n {
		seqs = append(seqs, bt.Add("ticker", []byte(`{"p":1}`)))
	}
	_ = p.Send(ctx(t), bt, cookie)
	return seqs
}

// A pipe writes batches without waiting for their replies, and settles
// each, in the order sent, once its replies came: every publish accepted
// is delivered, counted by the bridge, and timed from its write to its
// last reply.
func TestPipePublishes(t *testing.T) {
	srv := redistest.StartOwn(t)
	prefix := "t-" + t.Name() + ":"
	sub := newBridge(t, srv, "sub", bridge.Options{KeyPrefix: prefix})
	c := newCollector()
	sub.Handle("ticker", c.handle)
	if err := sub.Subscribe(ctx(t), "ticker"); err != nil {
		t.Fatal(err)
	}
	pub := newBridge(t, srv, "pub", bridge.Options{KeyPrefix: prefix, DisableSubscription: true})
	var rec pipeRecorder
	p, err := pub.NewPipe(ctx(t), rec.done)
	if err != nil {
		t.Fatal(err)
	}
	bt := pub.NewBatch()
	var want [][]uint64
	for k := range 3 {
		want = append(want, send(t, p, bt, 10, int64(k+1)))
	}
	if bt.Len() != 0 {
		t.Fatalf("Send left %d events in the batch", bt.Len())
	}
	// The pipe replaced the publisher's go-redis connection: one
	// publisher connection on the server, not two.
	list, err := srv.Client(t).ClientList(ctx(t)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(list, "name="+bridge.ClientName("pub", bridge.RolePublisher)+" "); n != 1 {
		t.Errorf("%d publisher connections while piping, want 1:\n%s", n, list)
	}
	if err := p.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// The bridge's own publisher dials again when asked.
	if err := pub.Ping(ctx(t)); err != nil {
		t.Errorf("Ping after the pipe closed: %v", err)
	}
	got := rec.batches()
	if len(got) != 3 {
		t.Fatalf("%d batches settled, want 3", len(got))
	}
	for k, s := range got {
		if s.cookie != int64(k+1) || len(s.seqs) != 10 || s.seqs[0] != want[k][0] || s.seqs[9] != want[k][9] ||
			len(s.failed) != 0 || s.err != nil || s.written <= 0 || s.replied < s.written {
			t.Errorf("batch %d settled as %+v, want cookie %d, seqs %v, all accepted, timed", k, s, k+1, want[k])
		}
	}
	c.wait(t, 30)
	if m := pub.Metrics(); m.Published != 30 || m.PublishErrors != 0 || m.PublishUnknown != 0 {
		t.Errorf("bridge counted %d published, %d errors, %d unknown; want 30, 0, 0", m.Published, m.PublishErrors, m.PublishUnknown)
	}
	if p.InFlight() != 0 {
		t.Errorf("%d batches in flight after Close", p.InFlight())
	}
}

// A refusal is a known failure, in the server's words, per publish; the
// pipe goes on.
func TestPipeRefusal(t *testing.T) {
	srv := redistest.StartOwn(t)
	url := srv.ACLUser(t, "nopub", "&*", "+@all", "-publish")
	pub, err := bridge.New(bridge.Options{URL: url, InstanceID: "pub", KeyPrefix: "t:", DisableSubscription: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	var rec pipeRecorder
	p, err := pub.NewPipe(ctx(t), rec.done)
	if err != nil {
		t.Fatal(err)
	}
	seqs := send(t, p, pub.NewBatch(), 4, 0)
	if err := p.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	got := rec.batches()
	if len(got) != 1 || len(got[0].failed) != 4 || got[0].failed[3] != seqs[3] || got[0].unknown != 0 ||
		!strings.HasPrefix(got[0].reasons[0], "NOPERM") || got[0].err == nil {
		t.Fatalf("refused batch settled as %+v, want 4 known failures, NOPERM", got)
	}
	if m := pub.Metrics(); m.Published != 0 || m.PublishErrors != 4 || m.PublishUnknown != 0 {
		t.Errorf("bridge counted %d published, %d errors, %d unknown; want 0, 4, 0", m.Published, m.PublishErrors, m.PublishUnknown)
	}
}

// A batch written to a server that then dies has an unknown outcome; one
// sent after, which cannot connect, is a known failure; and a cancelled
// ctx ends the wait for a frozen server at once.
func TestPipeServerGone(t *testing.T) {
	srv := redistest.StartOwn(t)
	pub := newBridge(t, srv, "pub", bridge.Options{DisableSubscription: true})
	var rec pipeRecorder
	pctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := pub.NewPipe(pctx, rec.done)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	bt := pub.NewBatch()
	send(t, p, bt, 2, 1) // connects, and is answered
	waitFor(t, "the first batch's replies", func() bool { return len(rec.batches()) == 1 })
	if err := srv.Inst.Freeze(); err != nil {
		t.Fatal(err)
	}
	send(t, p, bt, 3, 2) // written, never answered
	time.Sleep(50 * time.Millisecond)
	if got := rec.batches(); len(got) != 1 || p.InFlight() != 1 {
		t.Fatalf("%d settled, %d in flight while the server is frozen; want 1 and 1", len(got), p.InFlight())
	}
	redistest.Kill(t, srv)
	waitFor(t, "the frozen batch to settle", func() bool { return len(rec.batches()) == 2 })
	send(t, p, bt, 4, 3) // nothing to connect to
	waitFor(t, "the batch with no server", func() bool { return len(rec.batches()) == 3 })
	got := rec.batches()
	if s := got[0]; len(s.failed) != 0 {
		t.Errorf("batch before the freeze: %+v", s)
	}
	if s := got[1]; len(s.failed) != 3 || s.unknown != 3 || s.replied != 0 {
		t.Errorf("batch written into the freeze: %+v, want 3 unknown, no reply", s)
	}
	if s := got[2]; len(s.failed) != 4 || s.unknown != 0 || s.written != 0 {
		t.Errorf("batch with no server: %+v, want 4 known failures, never written", s)
	}

	// A frozen server and a cancelled ctx: Close does not wait it out.
	srv2 := redistest.StartOwn(t)
	pub2 := newBridge(t, srv2, "pub2", bridge.Options{DisableSubscription: true})
	var rec2 pipeRecorder
	cctx, cancel2 := context.WithCancel(context.Background())
	p2, err := pub2.NewPipe(cctx, rec2.done)
	if err != nil {
		t.Fatal(err)
	}
	bt2 := pub2.NewBatch()
	send(t, p2, bt2, 1, 0) // connects
	waitFor(t, "the first batch's replies", func() bool { return len(rec2.batches()) == 1 })
	if err := srv2.Inst.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv2.Inst.Thaw() }()
	send(t, p2, bt2, 5, 0)
	time.AfterFunc(100*time.Millisecond, cancel2)
	start := time.Now()
	err = p2.Close(context.Background())
	if took := time.Since(start); took > time.Second || err != nil {
		t.Fatalf("Close after the pipe's ctx ended took %v (%v), want about 100ms", took, err)
	}
	if got := rec2.batches(); len(got) != 2 || got[1].unknown != 5 || !errors.Is(got[1].err, bridge.ErrOutcomeUnknown) {
		t.Fatalf("batches %+v, want the frozen one's 5 unknown", got)
	}
}

// A pipe writes PUBLISH to one server: anything else is refused up front.
func TestPipeUnsupported(t *testing.T) {
	srv := redistest.StartOwn(t)
	b := newBridge(t, srv, "s", bridge.Options{Transport: bridge.TransportStreams, DisableSubscription: true})
	if _, err := b.NewPipe(ctx(t), func(*bridge.PipeBatch) {}); !errors.Is(err, bridge.ErrPipeUnsupported) {
		t.Fatalf("NewPipe over streams: %v, want ErrPipeUnsupported", err)
	}
}

// A pipe connects when it is made, so that a server at its maxclients
// refuses it before anything is measured, in the words of a refusal.
func TestPipeRefusedAtMaxClients(t *testing.T) {
	srv := redistest.StartOwn(t, "--maxclients", "1")
	b := newBridge(t, srv, "p", bridge.Options{DisableSubscription: true}) // the one client
	p, err := b.NewPipe(ctx(t), func(*bridge.PipeBatch) {})
	if err == nil {
		_ = p.Close(ctx(t))
		t.Fatal("NewPipe on a server at its maxclients: no error")
	}
	if !errors.Is(err, bridge.ErrMaxClients) || !strings.Contains(err.Error(), "connect pipe") {
		t.Fatalf("NewPipe on a server at its maxclients: %v, want ErrMaxClients naming the pipe", err)
	}
}
