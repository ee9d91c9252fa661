#!/usr/bin/env bash
# Install everything the real-client tests need, idempotently.
#
#   tests/setup.sh [--with-chromium] [--no-apt]
#
# Target: Debian bookworm, root, Python 3.11, Node 20 (the project's machine).
#  * apt: tcpdump and tshark (captures, frame-field checks), redis-server
#    (the message-queue tests start their own), nginx-light (the reverse-proxy
#    tests and captures start their own, tests/capture/nginx.sh), and with
#    --with-chromium Debian's chromium (only for the optional browser
#    capture). Pinned to the versions apt-cache policy showed when this was
#    written; if a pinned version is gone from the archive, the current one
#    is installed instead (with a warning). apt failures only warn: tests
#    that need tshark/tcpdump skip themselves when the tool is missing.
#  * tests/.venv from tests/requirements.txt (== pins, pip check), and
#    tests/.venv-async from tests/requirements-async.txt (the same plus eventlet, gevent).
#  * tests/node_modules via npm ci from tests/package-lock.json.
# Re-running is fast: each step is skipped when its inputs are unchanged.
set -euo pipefail
TESTS=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python3}
WITH_CHROMIUM=0
NO_APT=0
for a in "$@"; do
  case $a in
    --with-chromium) WITH_CHROMIUM=1 ;;
    --no-apt) NO_APT=1 ;;
    *) echo "usage: $0 [--with-chromium] [--no-apt]" >&2; exit 2 ;;
  esac
done

log() { echo "setup: $*" >&2; }

# ---- apt ---------------------------------------------------------------
# versions seen with apt-cache policy on Debian bookworm (2026-11)
APT_PINS=("tcpdump=4.99.3-1" "tshark=4.0.17-0+deb12u3" "redis-server=5:7.0.15-1~deb12u10"
          "nginx-light=1.22.1-9+deb12u11")
[ "$WITH_CHROMIUM" = 1 ] && APT_PINS+=("chromium=156.0.8078.108-1~deb12u1")

apt_install() {
  local need=() pin name have
  for pin in "${APT_PINS[@]}"; do
    name=${pin%%=*}
    have=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)
    case $have in
      "install ok installed "*)
        [ "${have##* }" = "${pin#*=}" ] || log "note: $name ${have##* } installed (pin ${pin#*=})" ;;
      *) need+=("$pin") ;;
    esac
  done
  [ ${#need[@]} -eq 0 ] && { log "apt: all present"; return 0; }
  if ! command -v apt-get >/dev/null; then
    log "WARNING: no apt-get; not installing ${need[*]}"; return 0
  fi
  log "apt: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get update -qq; then
    log "WARNING: apt-get update failed; tests needing ${need[*]} will be skipped"; return 0
  fi
  if apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
    return 0
  fi
  log "WARNING: pinned install failed; trying the archive's current versions"
  if ! apt-get install -y -qq --no-install-recommends "${need[@]%%=*}" >/dev/null; then
    log "WARNING: apt install of ${need[*]%%=*} failed; tests needing them will be skipped"
  fi
}
if [ "$NO_APT" = 0 ]; then apt_install; fi

# ---- python venv -------------------------------------------------------
make_venv() {  # make_venv DIR SUM REQUIREMENTS
  local venv=$1 sum=$2 req=$3
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" = "$sum" ]; then
    log "$(basename "$venv"): up to date"; return 0
  fi
  log "$(basename "$venv"): installing $(basename "$req")"
  [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  "$venv/bin/python" -m pip check
  echo "$sum" > "$venv/.requirements.sha256"
}
make_venv "$TESTS/.venv" "$(sha256sum "$TESTS/requirements.txt" | cut -d' ' -f1)" "$TESTS/requirements.txt"
# eventlet and gevent, for the watch tests of Flask-SocketIO's other async modes
ASYNC_SUM=$(cat "$TESTS/requirements.txt" "$TESTS/requirements-async.txt" | sha256sum | cut -d' ' -f1)
make_venv "$TESTS/.venv-async" "$ASYNC_SUM" "$TESTS/requirements-async.txt"
# gevent with gevent-websocket installed: the other WebSocket server of gevent mode
GW_SUM=$(cat "$TESTS/requirements.txt" "$TESTS/requirements-gevent-websocket.txt" | sha256sum | cut -d' ' -f1)
make_venv "$TESTS/.venv-gevent-websocket" "$GW_SUM" "$TESTS/requirements-gevent-websocket.txt"

# ---- npm ---------------------------------------------------------------
LOCK_SUM=$(sha256sum "$TESTS/package-lock.json" | cut -d' ' -f1)
NSTAMP=$TESTS/node_modules/.lock.sha256
if [ -d "$TESTS/node_modules/socket.io-client" ] && [ "$(cat "$NSTAMP" 2>/dev/null)" = "$LOCK_SUM" ]; then
  log "npm: up to date"
else
  log "npm: npm ci"
  npm ci --prefix "$TESTS" --no-audit --no-fund --loglevel=error >/dev/null
  echo "$LOCK_SUM" > "$NSTAMP"
fi
log "done"
