package workers

import (
	"context"
	"encoding/json"

	"github.com/redis/go-redis/v9"

	"github.com/redisload/redisload/harness"
)

// progressRelay turns the workers' intervals into the run's live points
// for Config.Progress: interval k is shown once every member still
// standing has sent it, so that a point is never one worker's share of
// the run passed off as the whole.
type progressRelay struct {
	ctl    *redis.Client
	key    string
	out    func(harness.SeriesPoint)
	merger *harness.SeriesMerger
	got    map[int]map[string]harness.SeriesRaw // by interval, by worker
	last   map[string]harness.SeriesRaw         // each worker's latest
	next   int
}

// newProgressRelay relays the intervals on key to cfg.Progress; it is nil
// when the run has no progress callback.
func newProgressRelay(ctl *redis.Client, key string, cfg harness.Config) *progressRelay {
	if cfg.Progress == nil {
		return nil
	}
	return &progressRelay{ctl: ctl, key: key, out: cfg.Progress, merger: harness.NewSeriesMerger(cfg),
		got: map[int]map[string]harness.SeriesRaw{}, last: map[string]harness.SeriesRaw{}}
}

// progressBatch bounds what one poll takes off the list.
const progressBatch = 256

// poll takes what the workers have sent and shows every interval now
// complete. A member lost does not hold the view back; one that has sent
// its result stands at its last counts, as in the merged series.
func (p *progressRelay) poll(ctx context.Context, members []*member) {
	if p == nil {
		return
	}
	msgs, err := p.ctl.LPopCount(ctx, p.key, progressBatch).Result()
	if err != nil {
		return // redis.Nil: nothing new; anything else: the next poll
	}
	for _, raw := range msgs {
		var m progressMsg
		if json.Unmarshal([]byte(raw), &m) != nil || m.K < p.next {
			continue
		}
		if p.got[m.K] == nil {
			p.got[m.K] = map[string]harness.SeriesRaw{}
		}
		p.got[m.K][m.ID] = m.Raw
	}
	for {
		row, raws := p.got[p.next], []harness.SeriesRaw(nil)
		complete, fresh := true, false
		for _, m := range members {
			r, ok := row[m.ID]
			switch {
			case ok:
				fresh = true
			case m.lost != "":
				continue
			case m.result != nil:
				r = p.last[m.ID]
				r.Hist, r.SendHist = nil, nil // its latencies and send delays were shown once
			default:
				complete = false
			}
			raws = append(raws, r)
		}
		if !complete || !fresh {
			return
		}
		for _, m := range members {
			if r, ok := row[m.ID]; ok {
				p.last[m.ID] = r
			}
		}
		delete(p.got, p.next)
		p.next++
		if pt, err := p.merger.Add(raws); err == nil {
			p.out(pt)
		}
	}
}
