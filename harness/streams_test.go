package harness_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/redistest"
)

// Over streams the accounting is the pub/sub one, exactly, at 3 and 5
// instances; the streams counted every entry the run added, trimmed none,
// and were deleted with their groups at the end: nothing is left.
func TestStreamsExact(t *testing.T) {
	srv := redistest.StartOwn(t)
	rc := srv.Client(t)
	// One type, one stream: in order too (checkExact); every type, eight.
	for n, types := range map[int][]string{3: {"ticker"}, 5: bridge.EventTypes} {
		prefix := "hs" + string(rune('0'+n)) + ":"
		res := run(t, harness.Config{Instances: n, Duration: time.Second, Rate: 300, EventTypes: types,
			Redis: bridge.Options{URL: srv.URL, KeyPrefix: prefix, Transport: bridge.TransportStreams}})
		checkExact(t, res)
		st := res.Streams
		if st == nil || len(st.Streams) != len(types) || st.Added != res.Totals.Published || st.Trimmed != 0 ||
			st.Deleted != len(types) || st.Redelivered != 0 || st.CleanupError != "" || res.Config.Transport != "streams" {
			t.Fatalf("%d instances: streams %+v, published %d, transport %q", n, st, res.Totals.Published, res.Config.Transport)
		}
		if len(res.Warnings) != 0 {
			t.Errorf("%d instances: warnings %v", n, res.Warnings)
		}
		if keys, err := rc.Keys(ctx(t), prefix+"*").Result(); err != nil || len(keys) != 0 {
			t.Errorf("%d instances: left in Redis: %v (%v)", n, keys, err)
		}
	}
}

// A stream that was there before the run is left there, without the
// run's groups, and the report says so.
func TestStreamsLeaveForeignStream(t *testing.T) {
	srv := redistest.StartOwn(t)
	rc := srv.Client(t)
	if err := rc.XAdd(ctx(t), &redis.XAddArgs{Stream: "hsf:ticker", Values: []any{"x", "1"}}).Err(); err != nil {
		t.Fatal(err)
	}
	res := run(t, harness.Config{Instances: 2, Duration: 500 * time.Millisecond, Rate: 100,
		Redis: bridge.Options{URL: srv.URL, KeyPrefix: "hsf:", Transport: bridge.TransportStreams}})
	st := res.Streams
	if !slices.Equal(st.Preexisting, []string{"hsf:ticker"}) || st.Deleted != 1 || st.GroupsRemoved != 2 {
		t.Fatalf("streams %+v", st)
	}
	groups, err := rc.XInfoGroups(ctx(t), "hsf:ticker").Result()
	if err != nil || len(groups) != 0 || !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "hsf:ticker existed before the run") }) {
		t.Errorf("groups left %v (%v); warnings %v", groups, err, res.Warnings)
	}
	if n, _ := rc.Exists(ctx(t), "hsf:trade").Result(); n != 0 {
		t.Error("the run's own stream was left")
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}
