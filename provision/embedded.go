package provision

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
)

// startEmbedded runs miniredis, an in-process Redis-compatible server with
// PUBLISH/SUBSCRIBE and AUTH, on a free loopback port. It lets redisload
// run anywhere, but its numbers describe an in-process Go server, not
// Redis: the report says so wherever it names the server.
func startEmbedded() (*Instance, error) {
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		return nil, fmt.Errorf("%w: embedded mode: %v", ErrUnavailable, err)
	}
	return &Instance{Mode: Embedded, URL: "redis://" + m.Addr(), closeFn: func() error {
		m.Close()
		return nil
	}}, nil
}
