#!/usr/bin/env bash
# Record the reverse-proxy captures of traces/diagnoses/: the real Flask-SocketIO reference app
# behind a real nginx (tests/capture/nginx.sh), a real python-socketio client through it.
#
#   tests/capture/proxy.sh [--out DIR] [no_upgrade|upgrade|all]     (default: all)
#
#   proxy_no_upgrade.pcap  nginx.sh without --upgrade: the proxy drops Upgrade/Connection
#   proxy_upgrade.pcap     nginx.sh --upgrade: the healthy config
#
# For each: start tests/flask_app/app.py (no extras) on a free port B and nginx.sh on a
# free port A, wait until a page comes through the proxy, start
# `tcpdump -i lo -U --immediate-mode -B 8192 -w DIR/proxy_NAME.pcap 'tcp port A or tcp port B'`
# (both legs: client<->nginx and nginx<->app), then a python-socketio client with its default
# transports (polling, then the upgrade to websocket) connects to http://127.0.0.1:A, emits
# `replace old value` once, waits 2 s and disconnects. It prints one JSON line: the transport
# after connecting and after 2 s, and what it received. DIR defaults to traces/diagnoses.
# Needs root (tcpdump), nginx-light and tests/.venv (tests/setup.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TESTS=$(dirname "$HERE")
ROOT=$(dirname "$TESTS")
OUT=$ROOT/traces/diagnoses
PY=$TESTS/.venv/bin/python

if [ "${1:-}" = "--out" ]; then OUT=$2; shift 2; fi
WHICH=${1:-all}
case $WHICH in no_upgrade|upgrade|all) ;; *) sed -n '4,9p' "$0" >&2; exit 2 ;; esac
[ -x "$PY" ] || { echo "proxy: run tests/setup.sh first" >&2; exit 2; }
command -v tcpdump >/dev/null || { echo "proxy: tcpdump missing (tests/setup.sh)" >&2; exit 2; }
[ -x /usr/sbin/nginx ] || { echo "proxy: nginx missing (tests/setup.sh installs nginx-light)" >&2; exit 2; }
mkdir -p "$OUT"

# shellcheck source=common.sh
. "$HERE/common.sh"

APP_PID= NGINX_PID= TD_PID=
cleanup() {
  [ -n "$TD_PID" ] && kill -INT "$TD_PID" 2>/dev/null && wait "$TD_PID" 2>/dev/null || true
  [ -n "$NGINX_PID" ] && kill -TERM "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null || true
  [ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null || true
  TD_PID= NGINX_PID= APP_PID=
}
trap cleanup EXIT

# the client: python -c "$CLIENT_PY" URL
CLIENT_PY=$(cat <<'EOF'
import json, sys, time
import socketio

url = sys.argv[1]
got = []
c = socketio.Client()
c.on('replaced values', lambda data: got.append(data))
c.connect(url, wait_timeout=10)            # default transports: polling, then websocket
first = c.transport()
c.emit('replace old value', {'item': 'lamp', 'bid': 12, 'bidder': 'ana'})
time.sleep(2)
print(json.dumps({'sid': c.get_sid(), 'transport_after_connect': first,
                  'transport_after_2s': c.transport(), 'received': got}), flush=True)
c.disconnect()
EOF
)

record_one() {  # record_one no_upgrade|upgrade
  local name=$1 a b pcap applog tdlog rc=0 flag=
  [ "$name" = upgrade ] && flag=--upgrade
  a=$(free_port) b=$(free_port)
  [ "$a" != "$b" ] || b=$(free_port)
  pcap=$OUT/proxy_$name.pcap
  applog=$(mktemp) tdlog=$(mktemp)
  "$PY" "$TESTS/flask_app/app.py" --port "$b" >"$applog" 2>&1 &
  APP_PID=$!
  "$HERE/nginx.sh" "$a" "$b" $flag &
  NGINX_PID=$!
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$a/auctions" && break
    sleep 0.1
  done
  # the readiness probe above is not captured: tcpdump starts after it
  tcpdump -i lo -U --immediate-mode -B 8192 -w "$pcap" "tcp port $a or tcp port $b" 2>"$tdlog" &
  TD_PID=$!
  for _ in $(seq 50); do grep -q listening "$tdlog" && break; sleep 0.1; done
  sleep 0.5
  echo "proxy: $name: client -> nginx on $a -> app on $b" >&2
  timeout 30 "$PY" -c "$CLIENT_PY" "http://127.0.0.1:$a" || rc=$?
  sleep 1.5  # let the last requests and TCP teardown finish
  kill -INT "$TD_PID"; wait "$TD_PID" || true; TD_PID=
  kill -TERM "$NGINX_PID"; wait "$NGINX_PID" || true; NGINX_PID=
  kill "$APP_PID"; wait "$APP_PID" 2>/dev/null || true; APP_PID=
  grep -E 'packets (captured|dropped by kernel)' "$tdlog" >&2 || true
  if [ "$rc" -ne 0 ]; then
    echo "proxy: $name: client failed (exit $rc); app log:" >&2
    tail -20 "$applog" >&2
    rm -f "$applog" "$tdlog"
    return "$rc"
  fi
  rm -f "$applog" "$tdlog"
  check_capture "proxy: $name" "$pcap" || return 1
  echo "proxy: wrote $pcap ($(stat -c %s "$pcap") bytes)" >&2
}

case $WHICH in
  all) record_one no_upgrade; record_one upgrade ;;
  *) record_one "$WHICH" ;;
esac
