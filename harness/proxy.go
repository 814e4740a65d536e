package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/redisload/redisload/bridge"
)

// proxies puts one in-process TCP proxy (Shopify's toxiproxy, used as a
// library) between each instance and Redis, so that latency and partition
// faults can hit one instance and leave the others alone. Only runs with
// such faults have them; the server probe always connects directly, so the
// timeline's server commands are never delayed or cut.
type proxies struct {
	list []*toxiproxy.Proxy // by instance
}

// latencyToxic is the name of the latency fault's toxic on a proxy.
const latencyToxic = "redisload-latency"

// startProxies starts a proxy on a free loopback port for each of the
// instances [lo, hi) of n (all of them in one process, a worker's own in a
// run over workers), each forwarding to upstream (host:port).
func startProxies(lo, hi, n int, upstream string) (*proxies, error) {
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := &proxies{list: make([]*toxiproxy.Proxy, n)}
	for i := lo; i < hi; i++ {
		px := toxiproxy.NewProxy(srv, "instance-"+strconv.Itoa(i), "127.0.0.1:0", upstream)
		if err := px.Start(); err != nil {
			p.close()
			return nil, fmt.Errorf("fault proxy: %w", err)
		}
		p.list[i] = px
	}
	return p, nil
}

// options returns o rewritten to connect through instance i's proxy.
func (p *proxies) options(o bridge.Options, i int) bridge.Options {
	addr := p.list[i].Listen // the port actually bound
	if o.URL == "" {
		o.Addr = addr
		return o
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return o // Validate has rejected it already
	}
	u.Host = addr
	o.URL = u.String()
	return o
}

// upstream is the host:port the run's options point at.
func upstream(o bridge.Options) (string, error) {
	if o.URL == "" {
		if o.Addr == "" {
			return bridge.DefaultAddr, nil
		}
		return o.Addr, nil
	}
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("fault proxy: cannot proxy %s", bridge.RedactURL(o.URL))
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "6379"), nil
	}
	return u.Host, nil
}

// each applies f to instance i's proxy, or every proxy of this process for
// AllInstances.
func (p *proxies) each(i int, f func(*toxiproxy.Proxy) error) error {
	if i != AllInstances {
		return f(p.list[i])
	}
	for _, px := range p.list {
		if px == nil {
			continue // another process's instance
		}
		if err := f(px); err != nil {
			return err
		}
	}
	return nil
}

// addLatency delays everything the server sends to instance i (or all).
func (p *proxies) addLatency(i int, latency, jitter time.Duration) error {
	js := fmt.Sprintf(`{"name":%q,"type":"latency","stream":"downstream","attributes":{"latency":%d,"jitter":%d}}`,
		latencyToxic, latency.Milliseconds(), jitter.Milliseconds())
	return p.each(i, func(px *toxiproxy.Proxy) error {
		_, err := px.Toxics.AddToxicJson(strings.NewReader(js))
		return err
	})
}

// removeLatency takes the latency away again.
func (p *proxies) removeLatency(i int) error {
	return p.each(i, func(px *toxiproxy.Proxy) error {
		return px.Toxics.RemoveToxic(context.Background(), latencyToxic)
	})
}

// cut resets instance i's connections and refuses new ones.
func (p *proxies) cut(i int) error {
	return p.each(i, func(px *toxiproxy.Proxy) error {
		px.Stop()
		return nil
	})
}

// heal accepts instance i's connections again, on the same port.
func (p *proxies) heal(i int) error {
	return p.each(i, func(px *toxiproxy.Proxy) error {
		if err := px.Start(); err != nil && !errors.Is(err, toxiproxy.ErrProxyAlreadyStarted) {
			return err
		}
		return nil
	})
}

// close stops every proxy and its connections.
func (p *proxies) close() {
	if p == nil {
		return
	}
	for _, px := range p.list {
		if px != nil {
			px.Stop()
		}
	}
}
