GO ?= go

.PHONY: run test rules-test deploy-test deps fmt-check lint bench bench-test stalls soak failover dev-cert

## run: serve on 127.0.0.1:8080 with the embedded in-memory Redis (set REDIS_URL for a real one)
run:
	$(GO) run ./cmd/profilecache

## test: install missing test dependencies, then vet, race-test and smoke-run every benchmark, check
## and unit-test the Prometheus rules, then the deploy test (docs/deploy.md): docker-compose.yml built
## and started for real, checked from outside; it runs alone, after the rest, and prints what it
## measured (-v). Its Docker plugins compile in the background meanwhile (scripts/background.sh).
test: deps fmt-check lint
	@./scripts/background.sh start docker-plugins ./scripts/docker-plugins.sh
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m -bench=. -benchtime=1x -skip '^TestDeploy$$' ./...
	$(MAKE) bench-test
	$(MAKE) rules-test
	@./scripts/background.sh wait docker-plugins
	$(MAKE) deploy-test

## rules-test: the recording and alerting rules of deploy/prometheus/ (docs/operations.md): promtool
## checks them, then runs their unit tests on synthetic series (tests/*.yml, 20 to 40 s)
rules-test:
	./scripts/ensure-deps.sh promtool
	promtool check rules deploy/prometheus/*.rules.yml
	promtool test rules deploy/prometheus/tests/*.yml

## deploy-test: only the deploy test. Starts dockerd if none runs (and stops it), builds the Compose
## and buildx plugins and the stand-in images once (13 min on a fresh machine), then ~2.5 min a run
deploy-test:
	./scripts/ensure-deps.sh docker
	$(GO) test -race -count=1 -timeout 60m -v -run '^TestDeploy$$' ./deploy

## deps: redis-server always (it runs the sentinels too); chromium and nginx-light for the browser and
## reverse-proxy tests; promtool (package prometheus) for the rules test; axe-core from npm (pinned, into
## .cache/axe) for the browser test's accessibility check; docker.io and debootstrap for the deploy test
deps:
	./scripts/ensure-deps.sh chromium nginx promtool axe docker

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## lint: go.mod and go.sum left unchanged by `go mod tidy` in every module (the service, bench/, tools/), and
## staticcheck (pinned in tools/go.mod) clean in the service and bench/. No function over 60 lines is a test:
## internal/funclen (TestFunctionLength), run by `go test ./...`
lint:
	$(GO) mod tidy -diff
	cd bench && $(GO) mod tidy -diff
	cd tools && $(GO) mod tidy -diff
	$(GO) tool -modfile=tools/go.mod staticcheck ./...
	cd bench && $(GO) tool -modfile=../tools/go.mod staticcheck ./...

## bench: profilecache vs a bare echo handler vs classic blob sessions (scs), wrk against a private
## redis-server, one table (docs/performance.md); then latency at a fixed rate (vegeta) and one vs two
## instances (docs/scale.md); quick run: make bench BENCH_FLAGS="-duration 3s -warmup 1s";
## one part alone: BENCH_FLAGS="-only fixed" (or saturation, instances, stalls: make stalls)
bench:
	./scripts/ensure-deps.sh wrk
	cd bench && GO=$(GO) $(GO) run . -root .. $(BENCH_FLAGS)

## stalls: only the Redis-stall part of `make bench` (issue 11): carol logs in 10 times while 64 clients read
## alice's and bob's pages; Redis's latency monitor and SLOWLOG say how long it was blocked. Before/after in one
## run: git worktree add /tmp/before main && make stalls BENCH_FLAGS="-stalls-baseline /tmp/before"
stalls:
	./scripts/ensure-deps.sh
	cd bench && GO=$(GO) $(GO) run . -root .. -only stalls $(BENCH_FLAGS)

## bench-test: vet and unit-test the harness (its own module, bench/): fast, no load, no wrk
bench-test:
	cd bench && $(GO) vet ./... && $(GO) test -count=1 ./...

## soak: 64 clients for 60 s against a private redis-server that is killed and restarted halfway;
## fails on any 5xx but 503, a non-503 during the outage, or one user's data in another's answer
## (not part of `make test`; shorter: make soak SOAK_FLAGS="-duration 20s -outage 4s")
soak:
	./scripts/ensure-deps.sh
	$(GO) run ./cmd/soak $(SOAK_FLAGS)

## failover: a Redis Cluster (3 masters, 1 replica each) on loopback; each master in turn is killed under load
## on two instances (REDIS_WAIT_REPLICAS=1 and 0), restarted, and rejoins as a replica; prints the window, the
## answers during it and what was lost (docs/scale.md). Not part of `make test`, which runs one short kill.
## Variants: FAILOVER_MODE=pause (SIGSTOP a master), FAILOVER_FULL_COVERAGE=no, FAILOVER_NODE_TIMEOUT=1s
failover:
	./scripts/ensure-deps.sh
	FAILOVER_LONG=1 $(GO) test -count=1 -timeout 20m -run '^TestClusterFailover$$' -v ./cmd/profilecache

## dev-cert: a self-signed certificate for localhost in deploy/tls/, so that `docker compose up` can start
## nginx on your machine (browsers warn about it; use a real certificate anywhere else: docs/deploy.md)
dev-cert:
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout deploy/tls/tls.key -out deploy/tls/tls.crt
