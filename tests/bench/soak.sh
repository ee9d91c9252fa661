#!/usr/bin/env bash
# Soak test (not part of CI: it runs for minutes). 1000 clients at a time connect, bid for a
# while, and disconnect, round after round, against one long-running `dispel serve` with its
# trace on (-q, the classroom setting). After every round the server's resident memory and
# open file descriptors are sampled; at the end the last rounds must not be above the first
# ones (memory within 10 %, descriptors back to the idle count): no leak of sessions, sockets
# or buffers across churn.
#
#   tests/bench/soak.sh [MINUTES] [CLIENTS]      # default: 10 minutes, 1000 clients
#
# Needs `cargo build --release`. Exits 1 on growth, printing the samples.
set -uo pipefail
cd "$(dirname "$0")/../.."
MINUTES=${1:-10}
CLIENTS=${2:-1000}
D=${DISPEL:-target/release/dispel}
PORT=${PORT:-5792}
ulimit -n 20000 2>/dev/null || true

$D serve --port "$PORT" -q --color never > /dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null' EXIT
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER/status"; }
fds() { ls "/proc/$SERVER/fd" | wc -l; }
IDLE_FDS=$(fds)
END=$(( $(date +%s) + MINUTES * 60 ))
round=0
samples=()
echo "round  rss_KiB  fds  msgs/s  lost"
while [ "$(date +%s)" -lt "$END" ]; do
  round=$((round + 1))
  out=$($D bench fanout --url "http://127.0.0.1:$PORT" --clients "$CLIENTS" --mode ack --duration 20 --json 2>/dev/null)
  sleep 2   # let the disconnects land
  line="$round $(rss) $(fds) $(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d.get("msgs_per_s", 0)), d.get("lost", "?"))' 2>/dev/null || echo "? ?")"
  echo "$line"
  samples+=("$line")
done

python3 - "$IDLE_FDS" "${samples[@]}" <<'PY'
import sys
idle = int(sys.argv[1])
rows = [r.split() for r in sys.argv[2:]]
if len(rows) < 4:
    print(f"only {len(rows)} rounds: run longer"); sys.exit(1)
rss = [int(r[1]) for r in rows]
fds = [int(r[2]) for r in rows]
lost = [r[4] for r in rows]
q = max(1, len(rows) // 4)
first, last = max(rss[:q]), max(rss[-q:])
ok = True
if last > first * 1.10:
    print(f"FAIL memory grew: first rounds peak {first} KiB, last rounds peak {last} KiB"); ok = False
if fds[-1] > idle + 5:
    print(f"FAIL descriptors: {fds[-1]} open after the last round, {idle} when idle"); ok = False
if any(l not in ("0",) for l in lost):
    print(f"FAIL messages lost: {lost}"); ok = False
print(f"{len(rows)} rounds; memory {first} -> {last} KiB; descriptors idle {idle}, after {fds[-1]}")
print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
sys.exit(0 if ok else 1)
PY
