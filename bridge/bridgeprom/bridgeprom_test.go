package bridgeprom_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/redisload/redisload/bridge"
	"github.com/redisload/redisload/bridge/bridgeprom"
	"github.com/redisload/redisload/internal/redistest"
)

// redisURL is a server for the example, which cannot start one itself.
var redisURL string

func TestMain(m *testing.M) {
	os.Exit(redistest.MainWithServer(m, func(u string) { redisURL = u }))
}

// An application serves its bridge's metrics and health beside its own:
// a collector on its Prometheus registry, the health handler on /health.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := bridge.New(bridge.Options{URL: redisURL, InstanceID: "app-1", KeyPrefix: "prom-example:"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	if err := b.Connect(ctx); err != nil {
		fmt.Println(err)
		return
	}
	if err := b.Subscribe(ctx, bridge.TypeTicker); err != nil {
		fmt.Println(err)
		return
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(bridgeprom.NewCollector(b, prometheus.Labels{"service": "market-data"}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/health", b.HealthHandler(time.Minute)) // a minute without an event is a dead feed
	srv := httptest.NewServer(mux)                      // http.ListenAndServe(":8080", mux) in an application
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/health")
	if err != nil {
		fmt.Println(err)
		return
	}
	var h bridge.Health
	_ = json.NewDecoder(resp.Body).Decode(&h)
	_ = resp.Body.Close()
	fmt.Println(resp.StatusCode, h.Status, h.Metrics.State, h.Metrics.Subscriptions)

	resp, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "redis_bridge_connected") || strings.HasPrefix(l, "redis_bridge_subscriptions") {
			fmt.Println(l)
		}
	}
	// Output:
	// 200 healthy connected 1
	// redis_bridge_connected{instance_id="app-1",service="market-data"} 1
	// redis_bridge_subscriptions{instance_id="app-1",service="market-data"} 1
}

// The collector reads the bridge at each scrape: counts after traffic,
// the age of the last event, the state after Close; the health check
// turns unhealthy on Close and on a feed quiet for longer than allowed.
func TestCollectorAndHealth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := func(id string) bridge.Options {
		return bridge.Options{URL: redisURL, InstanceID: id, KeyPrefix: "prom-test:"}
	}
	sub, err := bridge.New(opts("sub"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	pub, err := bridge.New(opts("pub"))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for _, b := range []*bridge.Bridge{sub, pub} {
		if err := b.Connect(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := sub.Subscribe(ctx, bridge.TypeTicker, bridge.TypeTrade); err != nil {
		t.Fatal(err)
	}
	if h := sub.Health(20 * time.Millisecond); h.Status != "healthy" || h.LastMessageAgeSeconds != nil {
		t.Errorf("before any event: %+v (a feed not started is not quiet)", h)
	}
	for range 3 {
		if err := pub.Publish(ctx, bridge.TypeTicker, map[string]any{"p": 1}); err != nil {
			t.Fatal(err)
		}
	}
	for sub.Metrics().Received < 3 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(bridgeprom.NewCollector(sub, nil))
	value := func(name, state string) (float64, bool) {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				if state != "" && m.GetLabel()[0].GetValue() != state && m.GetLabel()[1].GetValue() != state {
					continue
				}
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue(), true
				}
				return m.GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	for name, want := range map[string]float64{"redis_bridge_received_total": 3, "redis_bridge_subscriptions": 2,
		"redis_bridge_connected": 1, "redis_bridge_ready": 1, "redis_bridge_errors_total": 0} {
		if got, ok := value(name, ""); !ok || got != want {
			t.Errorf("%s = %v (%v), want %v", name, got, ok, want)
		}
	}
	if age, ok := value("redis_bridge_last_message_age_seconds", ""); !ok || age < 0 || age > 5 {
		t.Errorf("last message age %v (%v)", age, ok)
	}
	if v, _ := value("redis_bridge_subscriber_state", "connected"); v != 1 {
		t.Errorf("state connected = %v", v)
	}
	time.Sleep(50 * time.Millisecond)
	if h := sub.Health(20 * time.Millisecond); h.Status != "unhealthy" || !strings.HasPrefix(h.Reason, "no event for ") {
		t.Errorf("quiet for 50 ms with 20 ms allowed: %+v", h)
	}
	_ = sub.Close()
	rec := httptest.NewRecorder()
	sub.HealthHandler(0).ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"reason":"subscriber closed"`) {
		t.Errorf("after Close: %d %s", rec.Code, rec.Body)
	}
	if v, _ := value("redis_bridge_subscriber_state", "closed"); v != 1 {
		t.Errorf("state closed = %v", v)
	}
}
