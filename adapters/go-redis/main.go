// Command go-redis is a redisload instance adapter for go-redis v9: one
// instance of a load run whose Redis I/O is go-redis's, used as its
// documentation recommends, so that redisload's accounting measures what
// go-redis delivers. It speaks the instance protocol
// (docs/instance-protocol.md) on stdin and stdout:
//
//	redisload --instance-cmd 'go run ./adapters/go-redis'
//
// It publishes what it is given, reports what its client delivered, and
// drops its own echoes by the envelope's "source", as an application's
// bridge does. A team's own bridge on go-redis replaces the code between
// the hello and the loop.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// msg is one line of the protocol, either way.
type msg struct {
	Type          string            `json:"type"`
	Protocol      int               `json:"protocol,omitempty"`
	InstanceID    string            `json:"instance_id,omitempty"`
	ClientNames   map[string]string `json:"client_names,omitempty"`
	Redis         *hello            `json:"redis,omitempty"`
	Client        string            `json:"client,omitempty"`
	ClientVersion string            `json:"client_version,omitempty"`
	Channels      []string          `json:"channels,omitempty"`
	ID            uint64            `json:"id,omitempty"`
	Channel       string            `json:"channel,omitempty"`
	Payload       string            `json:"payload,omitempty"`
	Error         string            `json:"error,omitempty"`
	Unknown       string            `json:"unknown,omitempty"`
	ReceivedNs    int64             `json:"received_ns,omitempty"`
	Event         string            `json:"event,omitempty"`
	Detail        string            `json:"detail,omitempty"`
}

// hello is where to connect.
type hello struct {
	URL              string   `json:"url"`
	Topology         string   `json:"topology"` // standalone, cluster or sentinel
	PubSub           string   `json:"pubsub"`   // classic or sharded
	SentinelMaster   string   `json:"sentinel_master"`
	Sentinels        []string `json:"sentinels"`
	SentinelPassword string   `json:"sentinel_password"`
}

var (
	outMu sync.Mutex
	out   = bufio.NewWriter(os.Stdout)
)

// say writes one line to redisload.
func say(m msg) {
	b, _ := json.Marshal(m)
	outMu.Lock()
	defer outMu.Unlock()
	out.Write(append(b, '\n'))
	out.Flush()
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<10), 4<<20)
	var h msg
	if !in.Scan() || json.Unmarshal(in.Bytes(), &h) != nil || h.Type != "hello" {
		fmt.Fprintln(os.Stderr, "go-redis adapter: want a hello first")
		os.Exit(2)
	}
	ctx := context.Background()
	pub, sub, err := clients(h)
	if err != nil {
		say(msg{Type: "error", Error: err.Error()})
		os.Exit(1)
	}
	if err := pub.Ping(ctx).Err(); err != nil {
		say(msg{Type: "error", Error: err.Error()})
		os.Exit(1)
	}
	say(msg{Type: "hello", Protocol: 1, Client: "go-redis", ClientVersion: redis.Version()})

	var pubsubs []*redis.PubSub
	defer func() {
		for _, ps := range pubsubs {
			ps.Close()
		}
		pub.Close()
	}()
	for in.Scan() {
		var m msg
		if err := json.Unmarshal(in.Bytes(), &m); err != nil {
			fmt.Fprintf(os.Stderr, "go-redis adapter: %v\n", err)
			continue
		}
		switch m.Type {
		case "subscribe":
			ps, err := subscribe(ctx, sub, h, m.Channels)
			if err != nil {
				say(msg{Type: "error", Error: err.Error()})
				continue
			}
			pubsubs = append(pubsubs, ps...)
			say(msg{Type: "subscribed", Channels: m.Channels})
		case "publish":
			// One goroutine a publish: go-redis pools and pipelines
			// concurrent commands, as an application's would be.
			go publish(ctx, pub, h.Redis.PubSub == "sharded", m)
		case "ping":
			go func() {
				if err := pub.Ping(ctx).Err(); err != nil {
					say(msg{Type: "pong", ID: m.ID, Error: err.Error()})
					return
				}
				say(msg{Type: "pong", ID: m.ID})
			}()
		case "stop":
			return
		}
	}
}

// clients makes the publisher's and the subscriber's client of h's
// topology, each named as the hello asks (CLIENT SETNAME), which lets
// redisload find and kill their connections in its faults.
func clients(h msg) (pub, sub redis.UniversalClient, err error) {
	opt, err := redis.ParseURL(h.Redis.URL)
	if err != nil {
		return nil, nil, err
	}
	newClient := func(name string) redis.UniversalClient {
		switch h.Redis.Topology {
		case "cluster":
			return redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{opt.Addr}, Username: opt.Username,
				Password: opt.Password, TLSConfig: opt.TLSConfig, ClientName: name})
		case "sentinel":
			return redis.NewFailoverClient(&redis.FailoverOptions{MasterName: h.Redis.SentinelMaster,
				SentinelAddrs: h.Redis.Sentinels, SentinelPassword: h.Redis.SentinelPassword, Username: opt.Username,
				Password: opt.Password, DB: opt.DB, TLSConfig: opt.TLSConfig, ClientName: name})
		}
		o := *opt
		o.ClientName = name
		return redis.NewClient(&o)
	}
	return newClient(h.ClientNames["publisher"]), newClient(h.ClientNames["subscriber"]), nil
}

// subscribe subscribes sub to channels and reads what it delivers. With
// sharded pub/sub on a cluster, one SSUBSCRIBE may name the channels of
// one slot only (a CROSSSLOT error otherwise), and go-redis's SSubscribe
// connects to the shard of its first channel only (go-redis #3133), so
// each channel gets a PubSub of its own.
func subscribe(ctx context.Context, sub redis.UniversalClient, h msg, channels []string) ([]*redis.PubSub, error) {
	groups := [][]string{channels}
	if h.Redis.PubSub == "sharded" && h.Redis.Topology == "cluster" {
		groups = nil
		for _, ch := range channels {
			groups = append(groups, []string{ch})
		}
	}
	var out []*redis.PubSub
	for _, g := range groups {
		var ps *redis.PubSub
		if h.Redis.PubSub == "sharded" {
			ps = sub.SSubscribe(ctx, g...)
		} else {
			ps = sub.Subscribe(ctx, g...)
		}
		// Wait for the server's confirmation of every channel, as the
		// run's barrier needs: Receive returns the first reply.
		for range g {
			v, err := ps.Receive(ctx)
			if err != nil {
				ps.Close()
				return nil, err
			}
			if s, ok := v.(*redis.Subscription); !ok || (s.Kind != "subscribe" && s.Kind != "ssubscribe") {
				ps.Close()
				return nil, fmt.Errorf("unexpected reply %v", v)
			}
		}
		out = append(out, ps)
		go receive(ps, h.InstanceID, len(g))
	}
	return out, nil
}

// receive hands every message of ps to redisload, but the instance's own.
// go-redis reconnects a PubSub by itself and subscribes it again; its
// Receive shows the connection's error and then the confirmations, which
// are the events redisload accounts outages by.
func receive(ps *redis.PubSub, self string, channels int) {
	ctx := context.Background()
	confirmed := channels
	for {
		v, err := ps.Receive(ctx)
		if err != nil {
			if strings.Contains(err.Error(), "closed") {
				return // Close
			}
			if confirmed > 0 {
				say(msg{Type: "event", Event: "disconnected", Detail: err.Error()})
			}
			confirmed = 0
			time.Sleep(10 * time.Millisecond) // the next Receive reconnects
			continue
		}
		switch v := v.(type) {
		case *redis.Message:
			now := time.Now().UnixNano()
			if ownMessage(v.Payload, self) {
				say(msg{Type: "filtered", Payload: v.Payload})
				continue
			}
			say(msg{Type: "message", Channel: v.Channel, Payload: v.Payload, ReceivedNs: now})
		case *redis.Subscription:
			if (v.Kind == "subscribe" || v.Kind == "ssubscribe") && confirmed < channels {
				if confirmed == 0 {
					say(msg{Type: "event", Event: "reconnected"})
				}
				if confirmed++; confirmed == channels {
					say(msg{Type: "event", Event: "resubscribed"})
				}
			}
			if v.Kind == "sunsubscribe" && confirmed > 0 {
				// The server moved the channel's slot (a failover, a
				// migration): go-redis does not follow it.
				confirmed--
				say(msg{Type: "event", Event: "disconnected", Detail: "the server unsubscribed " + v.Channel})
			}
		}
	}
}

// ownMessage is the bridge's self-filter: the envelope's source is this
// instance.
func ownMessage(payload, self string) bool {
	var e struct {
		Source string `json:"source"`
	}
	return json.Unmarshal([]byte(payload), &e) == nil && e.Source == self
}

// publish publishes one payload and says how it went: accepted, refused
// (the server's error), or unknown (no reply: it may have been sent).
func publish(ctx context.Context, pub redis.UniversalClient, sharded bool, m msg) {
	var err error
	if sharded {
		err = pub.SPublish(ctx, m.Channel, m.Payload).Err()
	} else {
		err = pub.Publish(ctx, m.Channel, m.Payload).Err()
	}
	var rerr redis.Error
	switch {
	case err == nil:
		say(msg{Type: "published", ID: m.ID})
	case errors.As(err, &rerr): // the server refused it
		say(msg{Type: "published", ID: m.ID, Error: err.Error()})
	default: // no reply: it may have been published
		say(msg{Type: "published", ID: m.ID, Unknown: err.Error()})
	}
}
