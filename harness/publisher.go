package harness

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/redisload/redisload/bridge"
)

// publisher is the open-loop scheduler: event k is due at k/Rate seconds
// after the start, whether or not earlier publishes were slow, so a slow
// server shows as a shortfall in the achieved rate rather than silently
// lowering the load. It runs on Run's goroutine; its counters are read
// after it returns.
type publisher struct {
	cfg     Config
	bridges []*bridge.Bridge
	rng     *rand.Rand
	gen     *eventGen
	log     *eventLog
	buf     []byte

	published []uint64 // successful publishes, by instance
	errors    []uint64 // failed publishes, by instance
}

func newPublisher(cfg Config, seed uint64, bridges []*bridge.Bridge, log *eventLog) *publisher {
	// One generator drives instance, type and payload choices in a fixed
	// order, so a seed reproduces the run's events exactly.
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &publisher{
		cfg:       cfg,
		bridges:   bridges,
		rng:       rng,
		gen:       newEventGen(rng),
		log:       log,
		buf:       make([]byte, 0, 1024),
		published: make([]uint64, len(bridges)),
		errors:    make([]uint64, len(bridges)),
	}
}

// maxBatch bounds how many overdue events are sent before the clock and
// ctx are checked again, so that a publisher far behind still stops on time.
const maxBatch = 256

// run publishes until every event is sent, the duration is over, or ctx
// is cancelled.
func (p *publisher) run(ctx context.Context, start time.Time) {
	total := p.cfg.TotalEvents()
	rate := p.cfg.Rate
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var sent uint64
	for sent < total && ctx.Err() == nil {
		now := time.Since(start)
		if now >= p.cfg.Duration {
			return // open loop: what is not sent by the end is a shortfall
		}
		due := min(uint64(now.Seconds()*rate)+1, total)
		for batch := 0; sent < due && batch < maxBatch; batch++ {
			p.publishOne()
			sent++
		}
		if sent < due {
			continue // behind schedule: catch up, checking the clock as we go
		}
		wait := time.Until(start.Add(time.Duration(float64(sent) / rate * float64(time.Second))))
		if wait <= 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// publishOne publishes the next event from a randomly chosen instance.
// The publish itself ignores ctx: cancelling the run stops the schedule, it
// does not fail a publish already under way.
func (p *publisher) publishOne() {
	i := p.rng.IntN(len(p.bridges))
	typ := p.cfg.EventTypes[p.rng.IntN(len(p.cfg.EventTypes))]
	p.buf = p.gen.appendPayload(p.buf[:0], typ)
	seq, err := p.bridges[i].PublishRaw(context.Background(), typ, p.buf)
	if err != nil {
		p.errors[i]++
		if p.log != nil {
			p.log.printf("instance %d failed to publish %s #%d: %v", i, typ, seq, err)
		}
		return
	}
	p.published[i]++
	if p.log != nil {
		p.log.printf("instance %d published %s #%d", i, typ, seq)
	}
}
