#!/usr/bin/env bash
# Builds the Docker CLI plugins that Debian does not package, from the Go
# module proxy: Compose v2+ (`docker compose`; Debian's docker-compose is the
# old Python v1) and buildx (BuildKit builds, which the Dockerfile's cache
# mounts need and to which Compose delegates every build). Each is built in
# a module of its own under the cache directory, outside this repository's
# go.mod, and kept there: a second run only checks the versions.
#
#   scripts/docker-plugins.sh [DIR]   # default ~/.cache/profilecache/docker
#
# The binaries land in DIR/cli-plugins/; use them with DOCKER_CONFIG=DIR
# (the deploy test does) or copy them into ~/.docker/cli-plugins/.
# Cold, about 3 minutes each on two cores.
set -euo pipefail

compose_version=v5.6.0
buildx_version=v0.38.2

cache=${PROFILECACHE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/profilecache}
dir=${1:-$cache/docker}
mkdir -p "$dir/cli-plugins"

# plugin NAME MODULE PACKAGE VERSION LDFLAGS
plugin() {
  local name=$1 module=$2 pkg=$3 version=$4 ldflags=$5
  local bin="$dir/cli-plugins/docker-$name" stamp="$dir/cli-plugins/.docker-$name.version"
  local want="$module@$version $(go env GOVERSION)"
  if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  local mod="$cache/tools/$name-$version"
  mkdir -p "$mod"
  echo "docker-plugins: building docker-$name $version (module $mod)" >&2
  local start=$SECONDS
  (
    cd "$mod"
    [ -f go.mod ] || printf 'module profilecache.local/tools/%s\n' "$name" >go.mod
    # `go install pkg@version` refuses modules with replace/exclude
    # directives, as both have: a tool dependency of a module of our own.
    go get -tool "$pkg@$version" >/dev/null 2>&1 || go get -tool "$pkg@$version"
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$bin.tmp" "$pkg"
  )
  mv "$bin.tmp" "$bin"
  echo "$want" >"$stamp"
  echo "docker-plugins: docker-$name built ($((SECONDS - start)) s)" >&2
}

plugin compose github.com/docker/compose/v5 github.com/docker/compose/v5/cmd "$compose_version" \
  "-X github.com/docker/compose/v5/internal.Version=$compose_version"
plugin buildx github.com/docker/buildx github.com/docker/buildx/cmd/buildx "$buildx_version" \
  "-X github.com/docker/buildx/version.Version=$buildx_version -X github.com/docker/buildx/version.Package=github.com/docker/buildx"
