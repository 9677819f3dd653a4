#!/usr/bin/env bash
# Builds local stand-ins for the four official images that Dockerfile and
# docker-compose.yml name, for a machine that reaches no image registry (the
# development and CI machines): a Debian base made with debootstrap, and on
# it a Go builder, Redis, nginx and a distroless-like static image, each
# tagged with exactly the name the files use. The product's own image is
# never a stand-in: `docker compose up --build` builds it from ./Dockerfile.
#
#   deploy/standins/build.sh          # needs root (debootstrap) and a running dockerd
#
# An image that exists is reused: a real one pulled from a registry, or a
# stand-in whose inputs (its Dockerfile, the host's Go and CA bundle) have
# not changed. Stand-ins carry the label org.profilecache.standin, so
#   docker image ls --filter label=org.profilecache.standin
# lists them and `docker image rm` of those names brings back the official
# images on a machine with a registry.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/deploy/standins"
docker=${DOCKER:-docker}
base=${STANDIN_BASE:-profilecache-standin/debian:bookworm}
cache=${PROFILECACHE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/profilecache}
label=org.profilecache.standin
ca=/etc/ssl/certs/ca-certificates.crt
export DOCKER_BUILDKIT=0 # plain Dockerfiles; works with any docker CLI, buildx or not

log() { echo "standins: $*" >&2; }

# The names, from the files themselves.
golang_img=$(awk '$1 == "FROM" && $2 ~ /^golang:/ { print $2; exit }' "$root/Dockerfile")
static_img=$(awk '$1 == "FROM" { img = $2 } END { print img }' "$root/Dockerfile")
redis_img=$(awk '$1 == "image:" && $2 ~ /^redis:/ { print $2; exit }' "$root/docker-compose.yml")
nginx_img=$(awk '$1 == "image:" && $2 ~ /^nginx:/ { print $2; exit }' "$root/docker-compose.yml")
for v in golang_img static_img redis_img nginx_img; do
  [ -n "${!v}" ] || { log "cannot find the ${v%_img} image name in Dockerfile / docker-compose.yml"; exit 1; }
done

exists() { "$docker" image inspect "$1" >/dev/null 2>&1; }
label_of() { "$docker" image inspect -f "{{ index .Config.Labels \"$label\" }}" "$1" 2>/dev/null || true; }

# The Debian base: debootstrap (about a minute), then docker import.
if ! exists "$base"; then
  command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || {
    log "debootstrap is missing: scripts/ensure-deps.sh docker installs it"; exit 1; }
  mkdir -p "$cache"
  rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrap bookworm into $rootfs"
  start=$SECONDS
  PATH=$PATH:/usr/sbin:/sbin debootstrap --variant=minbase bookworm "$rootfs" >"$cache/debootstrap.log" 2>&1 || {
    tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | "$docker" import -c "LABEL $label=base" - "$base" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  log "base $base imported ($((SECONDS - start)) s)"
fi

# build NAME DIR [extra context files...]: builds DIR/Dockerfile tagged NAME
# unless NAME exists and is not a stand-in with other inputs.
build() {
  local name=$1 dir=$2
  shift 2
  local sum
  sum=$( (cd "$here/$dir" && cat Dockerfile ./*.sh 2>/dev/null; "$docker" image inspect -f '{{.Id}}' "$base"; for f in "$@"; do
    case "$f" in go) go version ;; *) sha256sum <"$f" ;; esac
  done) | sha256sum | cut -c1-16)
  if exists "$name"; then
    local have
    have=$(label_of "$name")
    if [ -z "$have" ] || [ "$have" = "$sum" ]; then
      return 0 # a real image, or an up-to-date stand-in
    fi
    log "$name: inputs changed, rebuilding"
  fi
  local ctx
  ctx=$(mktemp -d)
  cp -a "$here/$dir/." "$ctx/"
  for f in "$@"; do
    case "$f" in
      go) # the host's GOROOT, less its tests and docs
        local goroot
        goroot=$(go env GOROOT)
        mkdir "$ctx/go"
        tar -C "$goroot" --exclude=./test --exclude=./doc --exclude=./api -c . | tar -C "$ctx/go" -x ;;
      *) cp "$f" "$ctx/" ;;
    esac
  done
  local start=$SECONDS
  if ! "$docker" build --network host --build-arg "BASE=$base" --label "$label=$sum" -t "$name" "$ctx" >"$ctx.log" 2>&1; then
    tail -30 "$ctx.log" >&2
    rm -rf "$ctx" "$ctx.log"
    log "$name: build failed"
    return 1
  fi
  rm -rf "$ctx" "$ctx.log"
  log "$name built ($((SECONDS - start)) s)"
}

# Independent builds, side by side: most of their time is apt-get.
pids=()
build "$golang_img" golang go "$ca" & pids+=($!)
build "$redis_img" redis & pids+=($!)
build "$nginx_img" nginx & pids+=($!)
build "$static_img" distroless "$ca" & pids+=($!)
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
# The distroless stand-in's first stage, left behind by the classic builder.
"$docker" image prune -f --filter "label=$label=stage" >/dev/null
exit $rc
