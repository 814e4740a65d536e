package provision

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"
)

// dockerHealthy reports why no Docker engine can run a container, or nil.
// testcontainers panics in some set-ups without an engine; that is an
// answer too.
func dockerHealthy(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("docker provider: %v", r)
		}
	}()
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return p.Health(ctx) // closes p
}

// startContainer runs Redis in a container. The image is pulled only if it
// is not present locally. The Ryuk reaper is switched off unless the user
// configured it: it needs an image of its own from a registry, and
// redisload terminates its container itself in Close.
func startContainer(ctx context.Context, o Options) (*Instance, error) {
	if err := dockerHealthy(ctx); err != nil {
		return nil, fmt.Errorf("%w: container mode: no healthy Docker engine: %v", ErrUnavailable, err)
	}
	if _, set := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !set {
		_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	image := o.Image
	if image == "" {
		image = DefaultImage
	}
	c, err := tcredis.Run(ctx, image)
	if err != nil {
		if c != nil {
			_ = testcontainers.TerminateContainer(c)
		}
		return nil, fmt.Errorf("%w: container mode: start %s: %v", ErrUnavailable, image, err)
	}
	uri, err := c.ConnectionString(ctx)
	if err != nil {
		_ = testcontainers.TerminateContainer(c)
		return nil, fmt.Errorf("%w: container mode: %v", ErrUnavailable, err)
	}
	return &Instance{Mode: Container, URL: uri, closeFn: func() error {
		return testcontainers.TerminateContainer(c)
	}}, nil
}
