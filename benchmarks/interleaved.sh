#!/usr/bin/env bash
# An older release, this tree and uvicorn serving the ASGI hello at once; wrk goes round them
# ROUNDS times (default 9) and the medians are printed. Tells a regression from this machine's
# noise better than runs one after the other. Needs wrk (apt-get install wrk).
#
#   bash benchmarks/interleaved.sh 6f5abc8 [ROUNDS]
set -euo pipefail
rev=${1:?usage: interleaved.sh REV [ROUNDS]}
rounds=${2:-9}
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$root/.venv/bin/python}
old=$(mktemp -d)
git -C "$root" worktree add -q --detach "$old" "$rev"
trap 'kill $(jobs -p) 2>/dev/null; git -C "$root" worktree remove --force "$old"' EXIT
serve() { (cd "$1" && exec "$py" -m wsgi2asgi serve benchmarks.apps:asgi --port "$2" \
  --no-access-log --log-level warning) & }
serve "$old" 9201
serve "$root" 9202
(cd "$root" && exec "$py" -m uvicorn benchmarks.apps:asgi --port 9203 --no-access-log \
  --log-level warning --loop uvloop --http httptools) &
sleep 3
for _ in $(seq "$rounds"); do
  for port in 9201 9202 9203; do
    echo "$port $(wrk -t1 -c64 -d3s "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')"
  done
done | "$py" -c '
import statistics, sys
names = {"9201": "'"$rev"'", "9202": "this tree", "9203": "uvicorn"}
runs = {}
for line in sys.stdin:
    port, rate = line.split()
    runs.setdefault(port, []).append(float(rate))
for port, rates in sorted(runs.items()):
    print(f"{names[port]:>12}: median {statistics.median(rates):8,.0f} req/s over {len(rates)} rounds")
'
