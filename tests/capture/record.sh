#!/usr/bin/env bash
# Record loopback captures of the real Flask-SocketIO reference app driven by
# real clients, for dispel's replay tests.
#
#   tests/capture/record.sh [--out DIR] NAME...     (NAME: a preset below, or "all")
#
# For each NAME: start tests/flask_app/app.py on a free port (fresh state),
# start `tcpdump -i lo -U --immediate-mode -B 8192 -w DIR/NAME.pcap 'tcp port P'`,
# run the preset's client scenario, stop tcpdump with SIGINT, stop the app,
# and (if tshark is installed) check that no TCP segment is missing from the
# capture and write DIR/NAME.tshark.tsv with
#   tshark -r NAME.pcap -Y websocket -T fields -e frame.number -e tcp.stream \
#     -e websocket.fin -e websocket.opcode -e websocket.mask -e websocket.payload_length
# DIR defaults to traces/flask. Needs root (tcpdump) and tests/setup.sh
# (add --with-chromium for chromium_page). Prints the client's JSON lines;
# exits non-zero if a scenario or tcpdump fails.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TESTS=$(dirname "$HERE")
ROOT=$(dirname "$TESTS")
OUT=$ROOT/traces/flask
PY=$TESTS/.venv/bin/python
NODE=${NODE:-node}

if [ "${1:-}" = "--out" ]; then OUT=$2; shift 2; fi
[ $# -gt 0 ] || { sed -n '2,16p' "$0"; exit 2; }
[ -x "$PY" ] || { echo "record: run tests/setup.sh first" >&2; exit 2; }
command -v tcpdump >/dev/null || { echo "record: tcpdump missing (tests/setup.sh)" >&2; exit 2; }
mkdir -p "$OUT"

PRESETS="py_websocket_bid node_polling_upgrade py_polling_only node_websocket_deflate node_namespaces py_ping_abrupt chromium_page"

# preset NAME URL -> runs the client; APP_ARGS may be set by app_args
# The committed captures were recorded with the demo extras (/admin, acks, upload, late joiners).
app_args() {
  case $1 in
    py_ping_abrupt) echo "--extras --ping-interval 1" ;;
    *) echo "--extras" ;;
  esac
}
preset() {
  local name=$1 url=$2
  case $name in
    py_websocket_bid)       # python client, websocket only, two clients and bids
      "$PY" "$TESTS/clients/py_client.py" "$url" --transports websocket --scenario bid,two-clients ;;
    node_polling_upgrade)   # socket.io-client default transports: polling, then upgrade
      "$NODE" "$TESTS/clients/node_client.mjs" "$url" --scenario bid,ack,binary ;;
    py_polling_only)        # python client, polling only, one bid
      "$PY" "$TESTS/clients/py_client.py" "$url" --transports polling --scenario bid ;;
    node_websocket_deflate) # permessage-deflate negotiated; a >1024-byte bid is compressed by the client too
      "$NODE" "$TESTS/clients/node_client.mjs" "$url" --transports websocket --scenario bid,big-bid ;;
    node_namespaces)        # /admin welcome + acks, refused /nope, late joiner replay
      "$NODE" "$TESTS/clients/node_client.mjs" "$url" --transports websocket --scenario bid,late-joiner,namespace,bad-namespace ;;
    py_ping_abrupt)         # server pingInterval 1 s: ping/pong; then a client killed without close
      "$PY" "$TESTS/clients/py_client.py" "$url" --transports websocket --scenario idle,abrupt --idle 2.5 ;;
    chromium_page)          # headless chromium on /auctions, a bid typed into the page
      "$NODE" "$HERE/chromium_page.mjs" "$url" ;;
    *) echo "record: unknown preset $name (one of: $PRESETS)" >&2; return 2 ;;
  esac
}

# shellcheck source=common.sh
. "$HERE/common.sh"

APP_PID=
TD_PID=
cleanup() {
  [ -n "$TD_PID" ] && kill -INT "$TD_PID" 2>/dev/null && wait "$TD_PID" 2>/dev/null || true
  [ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null || true
  TD_PID= APP_PID=
}
trap cleanup EXIT

record_one() {
  local name=$1 port url pcap applog tdlog rc=0
  if [ "$name" = chromium_page ] && [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
    echo "record: WARNING: no chromium (tests/setup.sh --with-chromium); skipping $name" >&2
    return 0
  fi
  port=$(free_port)
  url=http://127.0.0.1:$port
  pcap=$OUT/$name.pcap
  applog=$(mktemp) tdlog=$(mktemp)
  # shellcheck disable=SC2046
  "$PY" "$TESTS/flask_app/app.py" --port "$port" $(app_args "$name") >"$applog" 2>&1 &
  APP_PID=$!
  for _ in $(seq 100); do
    "$PY" -c "import urllib.request,sys; urllib.request.urlopen('$url/auctions', timeout=1)" 2>/dev/null && break
    sleep 0.1
  done
  # the readiness probe above is not captured: tcpdump starts after it
  # --immediate-mode: without it libpcap's TPACKET_V3 ring hands packets over
  # in blocks (1 s timeout) and the last partial block is lost at SIGINT
  tcpdump -i lo -U --immediate-mode -B 8192 -w "$pcap" "tcp port $port" 2>"$tdlog" &
  TD_PID=$!
  for _ in $(seq 50); do grep -q listening "$tdlog" && break; sleep 0.1; done
  sleep 0.5
  echo "record: $name on port $port" >&2
  # every client has its own hard timeout (20-30 s)
  preset "$name" "$url" || rc=$?
  sleep 1.5  # let closing handshakes and TCP teardown finish
  kill -INT "$TD_PID"; wait "$TD_PID" || true; TD_PID=
  kill "$APP_PID"; wait "$APP_PID" 2>/dev/null || true; APP_PID=
  grep -E 'packets (captured|dropped by kernel)' "$tdlog" >&2 || true
  if [ "$rc" -ne 0 ]; then
    echo "record: $name: scenario failed (exit $rc); app log:" >&2
    tail -20 "$applog" >&2
    rm -f "$applog" "$tdlog"
    return "$rc"
  fi
  rm -f "$applog" "$tdlog"
  check_capture "record: $name" "$pcap" || return 1
  if command -v tshark >/dev/null; then
    tshark -r "$pcap" -Y websocket -T fields -e frame.number -e tcp.stream -e websocket.fin \
      -e websocket.opcode -e websocket.mask -e websocket.payload_length >"$OUT/$name.tshark.tsv" 2>/dev/null
  else
    echo "record: tshark missing; no $name.tshark.tsv" >&2
  fi
  echo "record: wrote $pcap ($(stat -c %s "$pcap") bytes)" >&2
}

names=("$@")
[ "${names[0]}" = all ] && read -r -a names <<<"$PRESETS"
for n in "${names[@]}"; do record_one "$n"; done
