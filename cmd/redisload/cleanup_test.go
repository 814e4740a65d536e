package main

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/redisload/redisload/internal/redistest"
)

// cleanup removes a crashed run's stream and says so; a dry run first
// removes nothing; bad usage exits 2, an unreachable server 3, each with
// one line.
func TestCleanupCommand(t *testing.T) {
	srv := redistest.StartOwn(t)
	rc := srv.Client(t)
	if err := rc.XGroupCreateMkStream(context.Background(), "crash:ticker", "redisload-0f0f-0", "$").Err(); err != nil {
		t.Fatal(err)
	}
	code, out, errs := invoke(t, context.Background(), "cleanup", "--redis-url="+srv.URL, "--key-prefix=crash:", "--dry-run")
	if n, _ := rc.Exists(context.Background(), "crash:ticker").Result(); code != exitPass || n != 1 ||
		out != "redisload cleanup: would remove 1 groups; streams deleted: crash:ticker; streams kept (other groups on them): none\n" {
		t.Fatalf("dry run: exit %d, %q %q, stream there: %d", code, out, errs, n)
	}
	code, out, _ = invoke(t, context.Background(), "cleanup", "--redis-url="+srv.URL, "--key-prefix=crash:")
	if n, _ := rc.Exists(context.Background(), "crash:ticker").Result(); code != exitPass || n != 0 || !strings.HasPrefix(out, "redisload cleanup: removed 1 groups") {
		t.Fatalf("exit %d, %q, stream there: %d", code, out, n)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"cleanup", "--nope"}, exitUsage, "redisload cleanup: unknown flag: --nope\n"},
		{[]string{"cleanup", "extra"}, exitUsage, `redisload cleanup: unexpected argument "extra" (flags only)`},
		{[]string{"cleanup", "--redis-url=redis://127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))}, exitUnavailable, "connection refused"},
	} {
		code, _, errs := invoke(t, context.Background(), tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") > 1 {
			t.Errorf("%v: exit %d, %q", tc.args, code, errs)
		}
	}
	if code, out, _ := invoke(t, context.Background(), "cleanup", "--help"); code != exitPass || !strings.Contains(out, "Usage: redisload cleanup") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
}
