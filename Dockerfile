# A small static image that runs as a non-root user:
#   docker build -t profilecache .
# The first stage's Go must be at least go.mod's `go` line (checked by
# cmd/profilecache/compose_test.go).
FROM golang:1.26-bookworm AS build
# Where modules come from: unset means Go's default (proxy.golang.org);
# `export GOPROXY=...` before `docker compose build` passes your own.
ARG GOPROXY
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# CGO off: a static binary that runs on distroless/static (no libc).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/profilecache ./cmd/profilecache

# distroless/static: CA certificates and tzdata, no shell, no package
# manager; the :nonroot variant runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/profilecache /profilecache
USER nonroot:nonroot
ENV ADDR=0.0.0.0:8080
EXPOSE 8080
# No shell or curl in the image: the binary probes itself (GET /healthz on
# ADDR) and exits 0 or 1.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/profilecache", "-healthcheck"]
# SIGTERM (docker stop) drains in-flight requests for up to 15 s; give
# `docker stop -t` / compose's stop_grace_period more than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/profilecache"]
