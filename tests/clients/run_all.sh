#!/usr/bin/env bash
# Run every scenario of both real clients against a running server.
#
#   tests/clients/run_all.sh URL
#
# URL: base URL of a Socket.IO auction server (Flask-SocketIO reference app
# or dispel serve), e.g. http://127.0.0.1:5000.
# Prints "PASS|FAIL <client> <transports> <scenarios>" per case (with the
# client's output on failure) and, as the final line, "N passed, M failed".
# Exit status: 0 if all passed, 1 otherwise. Needs tests/setup.sh first.
# Env: RUN_ALL_FILTER=regex runs only the cases whose label matches.
set -u
URL=${1:?usage: run_all.sh URL}
HERE=$(cd "$(dirname "$0")" && pwd)
TESTS=$(dirname "$HERE")
PY=$TESTS/.venv/bin/python
[ -x "$PY" ] || PY=python3
NODE=${NODE:-node}
FILTER=${RUN_ALL_FILTER:-}

passed=0
failed=0
run_case() { # label, command...
  local label=$1; shift
  if [ -n "$FILTER" ] && ! [[ $label =~ $FILTER ]]; then return; fi
  local outf
  outf=$(mktemp)
  # clients have their own 20 s hard timeout; this is a backstop
  local rc=0
  timeout 40 "$@" >"$outf" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1)); echo "PASS $label"
  else
    failed=$((failed + 1)); echo "FAIL $label (exit $rc)"; sed 's/^/    /' "$outf" | cut -c1-400
  fi
  rm -f "$outf"
}

PY_SCENARIOS="bid two-clients late-joiner ack namespace binary abrupt bad-namespace"
NODE_SCENARIOS="bid two-clients late-joiner ack namespace binary big-bid abrupt bad-namespace"

for tr in websocket polling,websocket; do
  for sc in $PY_SCENARIOS; do
    run_case "py $tr $sc" "$PY" "$HERE/py_client.py" "$URL" --transports "$tr" --scenario "$sc"
  done
done
run_case "py polling bid,ack,binary" "$PY" "$HERE/py_client.py" "$URL" --transports polling --scenario bid,ack,binary
run_case "py websocket bid,ack,namespace,binary" "$PY" "$HERE/py_client.py" "$URL" --transports websocket --scenario bid,ack,namespace,binary

for sc in $NODE_SCENARIOS; do
  run_case "node default $sc" "$NODE" "$HERE/node_client.mjs" "$URL" --scenario "$sc"
done
run_case "node websocket bid,ack,namespace,binary" "$NODE" "$HERE/node_client.mjs" "$URL" --transports websocket --scenario bid,ack,namespace,binary
run_case "node polling bid,ack,binary" "$NODE" "$HERE/node_client.mjs" "$URL" --transports polling --scenario bid,ack,binary

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
