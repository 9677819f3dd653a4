#!/bin/sh
# As the official image's entrypoint does: redis-server started without a
# configuration file refuses clients from other containers (protected
# mode), so turn that off; the container network is the protection.
set -e
case "$1" in -*) set -- redis-server "$@" ;; esac
if [ "$1" = redis-server ] && [ ! -f "${2:-}" ]; then
  shift
  set -- redis-server --protected-mode no "$@"
fi
exec "$@"
