#!/usr/bin/env bash
# What `dispel watch` costs a real Flask-SocketIO app (docs/performance.md, "dispel watch"):
# the reference app alone, under `dispel watch --no-tracer`, and under `dispel watch` (tracer
# on, full JSONL trace to a file), alternated round by round, measured with `dispel bench
# fanout`. One JSON line per run; quote medians.
#
#   tests/bench/watch.sh                 # 3 rounds, N=100, ack mode
#   MODE=window ROUNDS="1 2 3" N=100 WHO="direct traced" tests/bench/watch.sh
#
# Needs: cargo build --release, tests/.venv (tests/setup.sh), jq.
set -uo pipefail
cd "$(dirname "$0")/../.."
D=${DISPEL:-target/release/dispel}
N=${N:-100}
PY=tests/.venv/bin/python
TMP=${TMPDIR:-/tmp}
for round in ${ROUNDS:-1 2 3}; do
  for who in ${WHO:-direct wire traced}; do
    P=$((5800 + RANDOM % 100))
    case $who in
      direct) $PY tests/flask_app/app.py --port $P > /dev/null 2>&1 & pid=$! ;;
      wire)   $D watch --no-tracer --format jsonl --out "$TMP/watch-$who.jsonl" -- $PY tests/flask_app/app.py --port $P > /dev/null 2>&1 & pid=$! ;;
      traced) $D watch --format jsonl --out "$TMP/watch-$who.jsonl" -- $PY tests/flask_app/app.py --port $P > /dev/null 2>&1 & pid=$! ;;
      *) echo "unknown WHO $who (direct, wire, traced)" >&2; exit 2 ;;
    esac
    for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$P) 2>/dev/null && break; sleep 0.1; done
    sleep 0.5
    $D bench fanout --url http://127.0.0.1:$P --clients "$N" --mode "${MODE:-ack}" --window 64 --duration 10 --json |
      jq -c --arg w "$who" --arg r "$round" '{round: $r, who: $w, msgs: .msgs_per_s, p50: .latency_ms.p50, p99: .latency_ms.p99, lost: .lost, load: .load_avg_1m}'
    kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null
    pkill -f "flask_app/app.py --port $P" 2>/dev/null
    sleep 1
  done
done
