#!/usr/bin/env bash
# Installs the Debian packages the tests need when they are missing, so that
# `make test` works on a fresh machine that has only Go. Idempotent.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
need=()
want_axe=""
# redis-server also runs the Sentinel tests' sentinels (`redis-server
# sentinel.conf --sentinel`): Debian's redis-sentinel package adds only a
# service and a /usr/bin/redis-sentinel link to the same binary.
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
for extra in "$@"; do
  case "$extra" in
    chromium) command -v chromium >/dev/null 2>&1 || need+=(chromium) ;;
    nginx) command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light) ;;
    wrk) command -v wrk >/dev/null 2>&1 || need+=(wrk) ;;
    # The rules test (deploy/prometheus/): Debian's prometheus package
    # ships /usr/bin/promtool. The server comes along: where systemd runs,
    # the package starts it on :9090 (systemctl disable --now prometheus).
    promtool) command -v promtool >/dev/null 2>&1 || need+=(prometheus) ;;
    # axe-core for the browser test's accessibility check: from npm, at the
    # version internal/browsertest/axe/package-lock.json pins (with its hash).
    axe)
      want_axe=1
      command -v npm >/dev/null 2>&1 || need+=(npm) ;;
    # The deploy test (deploy/): Debian's Docker engine and CLI, and
    # debootstrap for the stand-in images (deploy/standins/build.sh).
    docker)
      command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || [ -x /usr/bin/dockerd ] || need+=(docker.io)
      command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap) ;;
    *) echo "ensure-deps: unknown dependency $extra" >&2; exit 2 ;;
  esac
done

if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "ensure-deps: need root or sudo to install: ${need[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "ensure-deps: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# axe-core goes into .cache/axe (git-ignored), where the browser test looks
# for it (internal/browsertest/axe.go); reinstalled only when the pin moves.
if [ -n "$want_axe" ]; then
  pin="$root/internal/browsertest/axe"
  dir="$root/.cache/axe"
  want=$(node -p "require('$pin/package.json').dependencies['axe-core']")
  have=$(node -p "try { require('$dir/node_modules/axe-core/package.json').version } catch { '' }")
  if [ "$have" != "$want" ] || [ ! -f "$dir/node_modules/axe-core/axe.min.js" ]; then
    echo "ensure-deps: installing axe-core $want into $dir" >&2
    mkdir -p "$dir"
    cp "$pin/package.json" "$pin/package-lock.json" "$dir/"
    npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error >&2
  fi
fi
