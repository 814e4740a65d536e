package harness_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/harness"
	"github.com/redisload/redisload/internal/redistest"
)

// The server's own counts sit beside the run's, exactly: one PUBLISH per
// accepted publish, and each channel's subscribers as the run confirmed
// them. A foreign publisher on a channel of its own adds to the server's
// calls, never to the run's.
func TestServerCountsBesideTheRun(t *testing.T) {
	srv := redistest.StartOwn(t)
	admin := srv.Client(t)
	const foreign = 7
	res := run(t, harness.Config{
		Instances: 3, Duration: 600 * time.Millisecond, Rate: 50,
		Redis:    bridge.Options{URL: srv.URL, KeyPrefix: "orc:"},
		Faults:   []harness.Fault{{At: 200 * time.Millisecond, Action: harness.FaultClientKill, Instance: 0}},
		Progress: func(p harness.SeriesPoint) {},
	})
	c := res.Server.Counts
	if c == nil || c.Skipped != "" || c.Command != "PUBLISH" {
		t.Fatalf("counts %+v", c)
	}
	if c.Calls != res.Totals.Published || c.Accepted != res.Totals.Published || res.Totals.Published != 30 || c.Unknown != 0 {
		t.Fatalf("counts %+v, published %d", c, res.Totals.Published)
	}
	if len(c.Subscribers) != 2 || c.Subscribers[0] != (harness.ChannelSubscribers{Channel: "orc:ticker", Server: 3, Run: 3}) ||
		c.Subscribers[1] != (harness.ChannelSubscribers{Channel: "orc:trade", Server: 3, Run: 3}) {
		t.Fatalf("subscribers %+v", c.Subscribers)
	}

	// Another client publishes on a channel the run does not use while
	// it runs: the server counts them; the run does not.
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(300 * time.Millisecond)
		for range foreign {
			admin.Publish(context.Background(), "elsewhere", "x")
		}
	}()
	res = run(t, harness.Config{Instances: 3, Duration: 600 * time.Millisecond, Rate: 50,
		Redis: bridge.Options{URL: srv.URL, KeyPrefix: "orc:"}})
	<-done
	if c := res.Server.Counts; c.Calls != res.Totals.Published+foreign || c.Accepted != res.Totals.Published || c.Foreign != 0 {
		t.Fatalf("with %d foreign publishes: %+v, published %d", foreign, c, res.Totals.Published)
	}
}

// Publishes the server refuses are counted by reason, in its words, when
// nothing could have said so before the run (the user may not run ACL
// DRYRUN); with DRYRUN the run is refused before connecting, naming the
// command.
func TestPublishRefusals(t *testing.T) {
	srv := redistest.StartOwn(t)
	res := run(t, harness.Config{Instances: 2, Duration: 500 * time.Millisecond, Rate: 40,
		Redis: bridge.Options{URL: srv.ACLUser(t, "nopub", "&*", "+@all", "-publish", "-acl"), KeyPrefix: "ref:"}})
	want := []harness.FailureReason{{Reason: "NOPERM this user has no permissions to run the 'publish' command", Count: 20}}
	if fmt.Sprint(res.PublishFailures) != fmt.Sprint(want) || res.Totals.Published != 0 || res.Totals.PublishErrors != 20 {
		t.Fatalf("failures %+v, totals %+v", res.PublishFailures, res.Totals)
	}
	if c := res.Server.Counts; c.Calls != 0 || c.Accepted != 0 {
		t.Fatalf("counts %+v", c)
	}
	if !strings.Contains(strings.Join(res.Warnings, "\n"), "20 publishes not accepted: NOPERM") {
		t.Fatalf("warnings %q", res.Warnings)
	}

	start := time.Now()
	_, err := harness.Run(context.Background(), harness.Config{Instances: 2, Duration: 500 * time.Millisecond, Rate: 40,
		Redis: bridge.Options{URL: srv.ACLUser(t, "half", "&ref:ticker", "+@all"), KeyPrefix: "ref:"}})
	var re *bridge.RefusedError
	if !errors.Is(err, harness.ErrUnavailable) || !errors.As(err, &re) || re.Command != "PUBLISH" ||
		fmt.Sprint(re.Channels) != "[ref:trade]" || !strings.Contains(re.Reply, "'ref:trade' channel") || time.Since(start) > time.Second {
		t.Fatalf("%v after %v", err, time.Since(start))
	}
}

// Over streams the consumer group's creation is asked about too.
func TestStreamsRefusalNamed(t *testing.T) {
	srv := redistest.StartOwn(t)
	_, err := harness.Run(context.Background(), harness.Config{Instances: 2, Duration: 500 * time.Millisecond, Rate: 40,
		Redis: bridge.Options{URL: srv.ACLUser(t, "nogroup", "&*", "+@all", "-xgroup"), KeyPrefix: "xr:", Transport: bridge.TransportStreams}})
	var re *bridge.RefusedError
	if !errors.As(err, &re) || re.Command != "XGROUP" || fmt.Sprint(re.Channels) != "[xr:ticker xr:trade]" {
		t.Fatalf("%v", err)
	}
}

// A SUBSCRIBE the server refuses fails Connect at once, naming the
// channel, classic or sharded; it used to wait out the connect timeout.
func TestSubscribeRefusalNamed(t *testing.T) {
	srv := redistest.StartOwn(t)
	url := srv.ACLUser(t, "sub", "&sr:ticker", "+@all", "-acl")
	for _, pubsub := range []bridge.PubSubMode{bridge.PubSubClassic, bridge.PubSubSharded} {
		start := time.Now()
		_, err := harness.Run(context.Background(), harness.Config{Instances: 2, Duration: 500 * time.Millisecond, Rate: 40,
			ConnectTimeout: 10 * time.Second, Redis: bridge.Options{URL: url, KeyPrefix: "sr:", PubSub: pubsub}})
		var re *bridge.RefusedError
		if !errors.As(err, &re) || fmt.Sprint(re.Channels) != "[sr:trade]" || !strings.HasPrefix(re.Reply, "NOPERM") ||
			time.Since(start) > 2*time.Second {
			t.Fatalf("%s: %v after %v", pubsub, err, time.Since(start))
		}
	}
}

// A stream deleted from outside mid-run is named as such: its entries are
// lost, and the cause is the deletion, not a restart.
func TestStreamDeletedFromOutside(t *testing.T) {
	srv := redistest.StartOwn(t)
	admin := srv.Client(t)
	time.AfterFunc(800*time.Millisecond, func() { admin.Del(context.Background(), "sd:trade") })
	res := run(t, harness.Config{Instances: 2, Duration: 2 * time.Second, Rate: 100,
		Redis: bridge.Options{URL: srv.URL, KeyPrefix: "sd:", Transport: bridge.TransportStreams}})
	st := res.Streams
	if st == nil || fmt.Sprint(st.Vanished) != "[sd:trade]" || st.Lost == 0 {
		t.Fatalf("streams %+v", st)
	}
	w := strings.Join(res.Warnings, "\n")
	if !strings.Contains(w, "sd:trade deleted from outside during the run") || strings.Contains(w, "restart without persistence") {
		t.Fatalf("warnings %q", res.Warnings)
	}
}
