#!/usr/bin/env bash
# Runs a slow preparation in the background and waits for it later, so that
# `make test` overlaps it with the tests: the deploy test's Docker plugins
# compile (6 min on a fresh machine) while the other tests mostly wait on
# Redis, nginx and Chromium. At the lowest priority, so that the tests come
# first. State in .cache/background/NAME.{pid,log,rc} (git-ignored).
#
#   scripts/background.sh start NAME CMD [ARGS...]
#   scripts/background.sh wait NAME    # returns when it ended; its failure is
#                                      # left to the step that needs it
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.cache/background"
mkdir -p "$dir"
op=$1 name=$2
shift 2

case "$op" in
  start)
    rm -f "$dir/$name.rc"
    (
      rc=0
      nice -n 19 "$@" >"$dir/$name.log" 2>&1 || rc=$?
      echo "$rc" >"$dir/$name.rc"
    ) </dev/null &
    echo $! >"$dir/$name.pid"
    echo "background: $name started (log: $dir/$name.log)" >&2
    ;;
  wait)
    [ -e "$dir/$name.pid" ] || exit 0
    pid=$(cat "$dir/$name.pid")
    # A run killed before it wrote its status has no rc file and no process.
    while [ ! -e "$dir/$name.rc" ] && kill -0 "$pid" 2>/dev/null; do sleep 1; done
    rm -f "$dir/$name.pid"
    rc=$(cat "$dir/$name.rc" 2>/dev/null || echo killed)
    if [ "$rc" != 0 ]; then
      echo "background: $name failed ($rc); the step that needs it tries again. Its log ends:" >&2
      tail -n 20 "$dir/$name.log" >&2
    fi
    ;;
  *) echo "background: start or wait, not $op" >&2; exit 2 ;;
esac
