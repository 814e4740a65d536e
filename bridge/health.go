package bridge

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Health is the bridge's health as HealthHandler reports it, in the shape
// of the seed's /health/redis endpoint.
type Health struct {
	// Status is "healthy" or "unhealthy".
	Status string `json:"status"`
	// Reason says why it is unhealthy; empty when healthy.
	Reason string `json:"reason,omitempty"`
	// LastMessageAgeSeconds is how long ago the last event arrived; absent
	// before the first.
	LastMessageAgeSeconds *float64 `json:"last_message_age_s,omitempty"`
	Metrics               Metrics  `json:"metrics"`
}

// Health judges the bridge: healthy when Ready (connected, every
// subscription confirmed) and, when maxQuiet is positive and an event has
// arrived, the last one arrived within maxQuiet, which tells a dead feed
// from a live connection. A feed that has sent nothing yet is not judged
// quiet: it may not have started.
func (b *Bridge) Health(maxQuiet time.Duration) Health {
	m := b.Metrics()
	h := Health{Status: "healthy", Metrics: m}
	if !m.LastReceived.IsZero() {
		age := time.Since(m.LastReceived).Seconds()
		h.LastMessageAgeSeconds = &age
	}
	switch {
	case !b.Ready():
		h.Status, h.Reason = "unhealthy", "subscriber "+m.State
	case maxQuiet > 0 && h.LastMessageAgeSeconds != nil && *h.LastMessageAgeSeconds > maxQuiet.Seconds():
		h.Status, h.Reason = "unhealthy", fmt.Sprintf("no event for %.1fs (more than %v)", *h.LastMessageAgeSeconds, maxQuiet)
	}
	return h
}

// HealthHandler serves Health as JSON: 200 when healthy, 503 when not, so
// that a load balancer or a Kubernetes probe can act on the code alone.
func (b *Bridge) HealthHandler(maxQuiet time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := b.Health(maxQuiet)
		w.Header().Set("Content-Type", "application/json")
		if h.Status != "healthy" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(h) // the client has gone: nothing to tell it
	})
}
