#!/usr/bin/env bash
# Fan-out benchmark: each server in turn, a fresh process per run, `dispel bench fanout` as the
# load, median of RUNS runs per row (peak RSS: the largest). Results in docs/performance.md.
#
#   tests/bench/fanout.sh            # the full table (about 20 minutes)
#   tests/bench/fanout.sh ROW...     # only rows whose name contains one of these words
#
# Env: DISPEL (default target/release/dispel), RUNS (3), DURATION (seconds per run, 10),
#      OUT (JSON lines of every run, default $TMPDIR/dispel-fanout.jsonl).
# Needs: cargo build --release; for the Python rows tests/.venv (tests/setup.sh) and, for
# eventlet, tests/bench/.venv-eventlet (made below if missing); for Node, npm ci in tests/bench.
# 5000 clients need > 5000 open files on both sides: this script raises `ulimit -n` to 20000.
set -uo pipefail
cd "$(dirname "$0")/../.."
D=${DISPEL:-target/release/dispel}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
TMP=${TMPDIR:-/tmp}
OUT=${OUT:-$TMP/dispel-fanout.jsonl}
PORT=${PORT:-5791}
ulimit -n 20000 2>/dev/null || echo "warning: could not raise ulimit -n (now $(ulimit -n))" >&2
: > "$OUT"

if [ ! -x tests/bench/.venv-eventlet/bin/python ] && [ -z "${NO_EVENTLET:-}" ]; then
  python3 -m venv tests/bench/.venv-eventlet &&
    tests/bench/.venv-eventlet/bin/pip install -q -r tests/requirements.txt eventlet==0.40.3 >&2
fi
[ -d tests/bench/node_modules/socket.io ] || (cd tests/bench && npm ci --no-audit --no-fund >&2)

# name | server command ({P} = port, {T} = temp dir)
server_cmd() {
  case $1 in
    dispel-notrace) echo "$D serve --port {P} --no-trace" ;;
    dispel-pretty)  echo "$D serve --port {P} -q --color never" ;;
    dispel-jsonl)   echo "$D serve --port {P} --format jsonl --out {T}/dispel-fanout-trace.jsonl" ;;
    flask-threading) echo "tests/.venv/bin/python tests/flask_app/app.py --port {P}" ;;
    flask-eventlet) echo "tests/bench/.venv-eventlet/bin/python tests/flask_app/app.py --port {P} --async-mode eventlet" ;;
    node)           echo "node tests/bench/node_server.mjs --port {P}" ;;
  esac
}

# row: server clients mode
ROWS=(
  "dispel-notrace 10 ack" "dispel-pretty 10 ack" "dispel-jsonl 10 ack"
  "dispel-notrace 100 ack" "dispel-pretty 100 ack" "dispel-jsonl 100 ack"
  "dispel-notrace 1000 ack" "dispel-pretty 1000 ack" "dispel-jsonl 1000 ack"
  "dispel-notrace 1000 window" "dispel-pretty 1000 window" "dispel-jsonl 1000 window"
  "dispel-notrace 5000 ack once" "dispel-jsonl 5000 ack once"
  "node 1000 ack" "node 1000 window"
  "flask-eventlet 1000 ack" "flask-threading 1000 ack"
)

wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

one_run() { # server clients mode -> one JSON line on stdout
  local srv=$1 n=$2 mode=$3 cmd pid
  cmd=$(server_cmd "$srv"); cmd=${cmd//\{P\}/$PORT}; cmd=${cmd//\{T\}/$TMP}
  $cmd > /dev/null 2> "$TMP/dispel-fanout-server.log" &
  pid=$!
  if ! wait_port "$PORT"; then echo "server $srv did not start" >&2; kill "$pid"; return 1; fi
  local extra=()
  [ "$mode" = window ] && extra=(--window 64)
  [ "$n" -ge 5000 ] && extra+=(--source-ips 4)
  $D bench fanout --url "http://127.0.0.1:$PORT" --clients "$n" --mode "$mode" "${extra[@]}" \
    --duration "$DURATION" --server-pid "$pid" --json \
    | jq -c --arg s "$srv" '. + {srv: $s}'
  kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  rm -f "$TMP/dispel-fanout-trace.jsonl"
  sleep 1
}

printf '%-16s %6s %-7s %9s %10s %9s %9s %9s %6s %8s %8s %8s %5s\n' \
  server clients mode connect_s msgs/s p50_ms p99_ms max_ms lost rss_MiB srv_cpu% gen_cpu% load
for row in "${ROWS[@]}"; do
  read -r srv n mode once <<< "$row"
  if [ $# -gt 0 ]; then
    keep=0; for w in "$@"; do [[ "$srv $n $mode" == *"$w"* ]] && keep=1; done
    [ $keep = 1 ] || continue
  fi
  case $srv in flask-eventlet) [ -x tests/bench/.venv-eventlet/bin/python ] || continue ;; esac
  runs=$RUNS; [ -n "${once:-}" ] && runs=1
  : > "$TMP/dispel-fanout-row.jsonl"
  for _ in $(seq 1 "$runs"); do
    one_run "$srv" "$n" "$mode" | tee -a "$OUT" >> "$TMP/dispel-fanout-row.jsonl"
  done
  # Median by throughput: that run's latencies are shown; RSS is the largest of all runs.
  jq -rs --arg n "$n" --arg m "$mode" '
    (sort_by(.msgs_per_s)) as $r | ($r[(($r|length)-1)/2|floor]) as $med |
    [ $med.srv, $n, $m, $med.connect_s, $med.msgs_per_s, $med.latency_ms.p50,
      $med.latency_ms.p99, $med.latency_ms.max, ([.[].lost]|max),
      ([.[].server.peak_rss_mib]|max), $med.server.cpu_pct, $med.generator.cpu_pct, $med.load_avg_1m ]
    | @tsv' "$TMP/dispel-fanout-row.jsonl" |
    awk -F'\t' '{printf "%-16s %6s %-7s %9s %10s %9s %9s %9s %6s %8s %8s %8s %5s\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13}'
done
