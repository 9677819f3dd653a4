GO ?= go

.PHONY: run test deps fmt-check bench

## run: serve on 127.0.0.1:8080 with the embedded in-memory Redis (set REDIS_URL for a real one)
run:
	$(GO) run ./cmd/profilecache

## test: install missing test dependencies, then vet, race-test and smoke-run every benchmark
test: deps fmt-check
	$(GO) vet ./...
	$(GO) test -race -count=1 -bench=. -benchtime=1x ./...

deps:
	./scripts/ensure-deps.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
