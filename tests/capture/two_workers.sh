#!/usr/bin/env bash
# Record traces/diagnoses/two_workers.pcap: two processes of the student chat app
# (tests/student_app/chat.py, Flask-SocketIO, threading mode) on two ports and no
# message_queue, as students run them behind a load balancer; an emit in one process
# never reaches the clients of the other.
#
#   tests/capture/two_workers.sh [--out DIR]
#
# Starts chat.py --port A and chat.py --port B (free ports), waits for both pages, starts
# `tcpdump -i lo -U --immediate-mode -B 8192 -w DIR/two_workers.pcap 'tcp port A or tcp port B'`,
# then two python-socketio clients over WebSocket: "ana" on worker A and "bob" on worker B,
# both connecting to "/" with the app's token and joining room1 (`join`, acknowledged).
# Ana then emits `say` {room: room1} (the handler emits `said` to room1) and `shout` (the
# handler does send(..., broadcast=True)); both wait 2 s and disconnect. Prints one JSON
# line per client with the events it received: ana gets `said` and `message`, bob neither.
# DIR defaults to traces/diagnoses. Needs root (tcpdump) and tests/.venv (tests/setup.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TESTS=$(dirname "$HERE")
ROOT=$(dirname "$TESTS")
OUT=$ROOT/traces/diagnoses
PY=$TESTS/.venv/bin/python

if [ "${1:-}" = "--out" ]; then OUT=$2; shift 2; fi
[ $# -eq 0 ] || { sed -n '7p' "$0" >&2; exit 2; }
[ -x "$PY" ] || { echo "two_workers: run tests/setup.sh first" >&2; exit 2; }
command -v tcpdump >/dev/null || { echo "two_workers: tcpdump missing (tests/setup.sh)" >&2; exit 2; }
mkdir -p "$OUT"

# shellcheck source=common.sh
. "$HERE/common.sh"

A_PID= B_PID= TD_PID=
cleanup() {
  [ -n "$TD_PID" ] && kill -INT "$TD_PID" 2>/dev/null && wait "$TD_PID" 2>/dev/null || true
  [ -n "$A_PID" ] && kill "$A_PID" 2>/dev/null && wait "$A_PID" 2>/dev/null || true
  [ -n "$B_PID" ] && kill "$B_PID" 2>/dev/null && wait "$B_PID" 2>/dev/null || true
  TD_PID= A_PID= B_PID=
}
trap cleanup EXIT

# the clients: python -c "$CLIENTS_PY" URL_A URL_B
CLIENTS_PY=$(cat <<'EOF'
import json, sys, time
import socketio

url_a, url_b = sys.argv[1], sys.argv[2]
got = {'ana': [], 'bob': []}


def client(nick, url):
    c = socketio.Client()

    @c.on('*')
    def any_event(event, *data):
        got[nick].append([event, *data])

    c.connect(url, auth={'token': 'letmein', 'nick': nick}, transports=['websocket'],
              wait_timeout=10)
    return c


ana = client('ana', url_a)
bob = client('bob', url_b)
acks = {'ana join': ana.call('join', 'room1', timeout=5),
        'bob join': bob.call('join', 'room1', timeout=5)}
time.sleep(0.2)
acks['ana say'] = ana.call('say', {'room': 'room1', 'text': 'hi from worker A'}, timeout=5)
ana.emit('shout', 'hello everyone')
time.sleep(2)
for nick, c, url in (('ana', ana, url_a), ('bob', bob, url_b)):
    print(json.dumps({'client': nick, 'worker': url, 'sid': c.get_sid(), 'received': got[nick]}),
          flush=True)
print(json.dumps({'acks': acks}), flush=True)
ana.disconnect()
bob.disconnect()
said = {nick: any(e[0] == 'said' for e in got[nick]) for nick in got}
if not said['ana'] or said['bob']:
    sys.exit('two_workers: expected ana to get "said" and bob not')
EOF
)

pa=$(free_port) pb=$(free_port)
[ "$pa" != "$pb" ] || pb=$(free_port)
pcap=$OUT/two_workers.pcap
alog=$(mktemp) blog=$(mktemp) tdlog=$(mktemp)
"$PY" "$TESTS/student_app/chat.py" --port "$pa" >"$alog" 2>&1 &
A_PID=$!
"$PY" "$TESTS/student_app/chat.py" --port "$pb" >"$blog" 2>&1 &
B_PID=$!
for p in "$pa" "$pb"; do
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$p/" && break
    sleep 0.1
  done
done
# the readiness probes above are not captured: tcpdump starts after them
tcpdump -i lo -U --immediate-mode -B 8192 -w "$pcap" "tcp port $pa or tcp port $pb" 2>"$tdlog" &
TD_PID=$!
for _ in $(seq 50); do grep -q listening "$tdlog" && break; sleep 0.1; done
sleep 0.5
echo "two_workers: worker A on $pa, worker B on $pb, no message queue" >&2
rc=0
timeout 30 "$PY" -c "$CLIENTS_PY" "http://127.0.0.1:$pa" "http://127.0.0.1:$pb" || rc=$?
sleep 1.5  # let closing handshakes and TCP teardown finish
kill -INT "$TD_PID"; wait "$TD_PID" || true; TD_PID=
cleanup
grep -E 'packets (captured|dropped by kernel)' "$tdlog" >&2 || true
if [ "$rc" -ne 0 ]; then
  echo "two_workers: clients failed (exit $rc); worker logs:" >&2
  tail -10 "$alog" "$blog" >&2
  rm -f "$alog" "$blog" "$tdlog"
  exit "$rc"
fi
rm -f "$alog" "$blog" "$tdlog"
check_capture two_workers "$pcap" || exit 1
echo "two_workers: wrote $pcap ($(stat -c %s "$pcap") bytes)" >&2
