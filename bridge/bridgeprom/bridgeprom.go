// Package bridgeprom exposes an event bridge to Prometheus: the seed's
// metrics (connected, published, received, errors, subscriptions) and
// what a load test found matters (reconnects, self-filtered, the
// subscriber's state, the last message's age). It is a package of its
// own so that an application that does not use Prometheus does not link
// its client.
package bridgeprom

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redisload/redisload/bridge"
)

// states are the subscriber states the state metric has a series for.
var states = []string{"new", "connected", "recovering", "down", "gave up", "closed"}

// Collector reads a bridge's Metrics at each scrape: nothing is kept in
// between, so it never disagrees with the bridge.
type Collector struct {
	b     *bridge.Bridge
	descs map[string]*prometheus.Desc
}

// NewCollector returns a collector of b's metrics, named redis_bridge_*
// and labelled instance_id, plus labels, which tell several bridges of
// one process apart.
func NewCollector(b *bridge.Bridge, labels prometheus.Labels) *Collector {
	c := &Collector{b: b, descs: map[string]*prometheus.Desc{}}
	cl := prometheus.Labels{"instance_id": b.ID()}
	for k, v := range labels {
		cl[k] = v
	}
	desc := func(name, help string, variable ...string) {
		c.descs[name] = prometheus.NewDesc("redis_bridge_"+name, help, variable, cl)
	}
	desc("connected", "1 while connected and subscribed to everything asked for.")
	desc("ready", "1 when connected with no subscription change waiting for Redis's confirmation.")
	desc("published_total", "Events Redis accepted.")
	desc("publish_errors_total", "Publishes known to have failed (never retried).")
	desc("publish_unknown_total", "Publishes sent with no reply: possibly delivered (never retried).")
	desc("received_total", "Events handed to a handler (own echoes excluded).")
	desc("self_filtered_total", "The bridge's own events echoed back by Redis and dropped.")
	desc("malformed_total", "Messages on subscribed channels that were not events.")
	desc("errors_total", "Every failure: publishes, subscribes, broken connections.")
	desc("reconnects_total", "Subscriber connections made after the first.")
	desc("subscriptions", "Event types subscribed, confirmed by Redis.")
	desc("subscriber_state", "1 for the subscriber's state, 0 for the others.", "state")
	desc("last_message_age_seconds", "Seconds since the last event arrived; absent before the first.")
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	m := c.b.Metrics()
	bit := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	gauge := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v, labels...)
	}
	counter := func(name string, v uint64) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v))
	}
	gauge("connected", bit(m.Connected))
	gauge("ready", bit(c.b.Ready()))
	counter("published_total", m.Published)
	counter("publish_errors_total", m.PublishErrors)
	counter("publish_unknown_total", m.PublishUnknown)
	counter("received_total", m.Received)
	counter("self_filtered_total", m.SelfFiltered)
	counter("malformed_total", m.Malformed)
	counter("errors_total", m.Errors)
	counter("reconnects_total", m.Reconnects)
	gauge("subscriptions", float64(m.Subscriptions))
	for _, s := range states {
		gauge("subscriber_state", bit(s == m.State), s)
	}
	if !m.LastReceived.IsZero() {
		gauge("last_message_age_seconds", time.Since(m.LastReceived).Seconds())
	}
}
