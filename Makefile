# redisload: the README's two commands are `make run` and `make test`.
GO ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
RUN_ARGS ?= --instances=5 --duration=30s --verbose

.PHONY: build install run test check bench soak fuzz release image adapters docs

# The version in --version and in every report: the tag or commit.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/redisload ./cmd/redisload

# redisload on PATH: into $(go env GOBIN), or $(go env GOPATH)/bin.
install:
	$(GO) install -ldflags "$(LDFLAGS)" ./cmd/redisload

# Release binaries: static, version stamped, one per OS and architecture,
# with their SHA-256 sums, in dist/.
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
release:
	@rm -rf dist && mkdir -p dist
	@for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		out=dist/redisload-$(VERSION)-$$os-$$arch$$ext; \
		echo "$$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o $$out ./cmd/redisload || exit 1; \
	done
	@cd dist && sha256sum redisload-* > SHA256SUMS

# The container image (deploy/Dockerfile), where a Docker engine runs.
image:
	docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) -t redisload:$(VERSION) .

# The seed's stress scenario against $$REDIS_URL (default 127.0.0.1:6379).
run:
	@$(GO) build -o bin/redisload ./cmd/redisload
	@./bin/redisload $(RUN_ARGS)

# Every test, with the race detector; tests start their own redis-server.
# The Node adapters' dependencies, from their lockfiles; the Go adapter
# builds with the tests, the Python one uses Debian's python3-redis.
adapters:
	cd adapters/ioredis && npm ci --no-audit --no-fund
	cd adapters/node-redis && npm ci --no-audit --no-fund

test:
	$(GO) test -race -count=1 -timeout 10m ./...

# The docs' sample outputs and flags reference, from what the commands
# print now (docs/docs_test.go checks them in make test).
docs:
	$(GO) test ./docs -count=1 -update

check:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) test -race -count=1 -timeout 10m ./...

BENCH_DURATION ?= 10s

# Micro-benchmarks of the hot paths (envelope, payloads, accounting), then
# redisload against a minimal go-redis reference, side by side, against a
# redis-server of its own, then every client adapter beside the in-process
# bridge (about 5 minutes; BENCH_DURATION per run).
bench: adapters
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./...
	$(GO) build -o bin/redisload ./cmd/redisload
	$(GO) build -o bin/redisload-bench ./cmd/redisload-bench
	./bin/redisload-bench -redisload bin/redisload -duration $(BENCH_DURATION) $(if $(BENCH_BEFORE),-before $(BENCH_BEFORE))

# Memory flat in run length: the same load for 30 s and 300 s (about 6 min).
soak:
	$(GO) build -o bin/redisload ./cmd/redisload
	$(GO) build -o bin/redisload-bench ./cmd/redisload-bench
	./bin/redisload-bench -redisload bin/redisload -soak

# A bounded fuzz run of the envelope scanner against encoding/json.
fuzz:
	$(GO) test ./bridge -run '^$$' -fuzz FuzzScanAgreesWithJSON -fuzztime 60s
