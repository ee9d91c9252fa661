#!/usr/bin/env bash
# A real nginx reverse proxy in front of a Socket.IO app, for the proxy captures and tests.
#
#   tests/capture/nginx.sh LISTEN_PORT UPSTREAM_PORT [--upgrade]
#
# Runs /usr/sbin/nginx (Debian's nginx-light, tests/setup.sh) in the foreground as the
# current user, one process (daemon off, master_process off), listening on
# 127.0.0.1:LISTEN_PORT, with a config written into a fresh temp dir (pid, error and
# access logs, every *_temp_path); /etc/nginx is not read. The proxy is
#
#   location / { proxy_pass http://127.0.0.1:UPSTREAM_PORT; }
#
# the common misconfiguration: nginx then speaks HTTP/1.0 upstream with
# "Connection: close" and does not pass Upgrade, so no WebSocket gets through.
# Without --upgrade nginx also sends "Host: 127.0.0.1:UPSTREAM_PORT" ($proxy_host), so a
# client that sends an Origin header (websocket-client does, on the upgrade) is refused by
# python-engineio's same-origin check ("Not an accepted origin.") before the missing Upgrade
# header is looked at.
# --upgrade adds what the Flask-SocketIO docs ask for: proxy_http_version 1.1, Upgrade
# $http_upgrade, Connection "upgrade", a long proxy_read_timeout, and the Host header
# as the client sent it. The docs' "Host $host" drops the port, and on a port other
# than 80 the WebSocket's Origin (http://127.0.0.1:LISTEN_PORT) no longer matches it, so
# this uses $http_host.
# Prints nothing on success. SIGTERM (or SIGINT, HUP) stops nginx, removes the temp dir
# and exits 0; a shell without job control starts `nginx.sh ... &` with SIGINT ignored, so
# send SIGTERM. Exits 2 on bad arguments or a missing nginx; if nginx itself fails (say the
# port is taken), prints its error log and exits with its status.
# The caller waits for the port to accept connections.
set -uo pipefail
NGINX=${NGINX:-/usr/sbin/nginx}

usage() { sed -n '4p' "$0" | sed 's/^# */usage: /' >&2; exit 2; }
[ $# -ge 2 ] && [ $# -le 3 ] || usage
LISTEN=$1 UPSTREAM=$2 UPGRADE=0
[[ $LISTEN =~ ^[0-9]+$ && $UPSTREAM =~ ^[0-9]+$ ]] || usage
if [ $# -eq 3 ]; then [ "$3" = --upgrade ] && UPGRADE=1 || usage; fi
[ -x "$NGINX" ] || { echo "nginx.sh: $NGINX missing (apt-get install nginx-light; tests/setup.sh)" >&2; exit 2; }

DIR=$(mktemp -d "${TMPDIR:-/tmp}/dispel-nginx.XXXXXX") || exit 2
NGINX_PID=
stop() {
  if [ -n "$NGINX_PID" ]; then
    kill -TERM "$NGINX_PID" 2>/dev/null
    wait "$NGINX_PID" 2>/dev/null
  fi
  rm -rf "$DIR"
  exit 0
}
trap stop TERM INT HUP

if [ "$UPGRADE" = 1 ]; then
  PROXY_EXTRA='
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $http_host;
            proxy_read_timeout 3600s;'
else
  PROXY_EXTRA=
fi

cat >"$DIR/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $DIR/nginx.pid;
error_log $DIR/error.log warn;
events {
    worker_connections 256;
}
http {
    access_log $DIR/access.log;
    client_body_temp_path $DIR/client_body;
    proxy_temp_path $DIR/proxy;
    fastcgi_temp_path $DIR/fastcgi;
    uwsgi_temp_path $DIR/uwsgi;
    scgi_temp_path $DIR/scgi;
    server {
        listen 127.0.0.1:$LISTEN;
        location / {
            proxy_pass http://127.0.0.1:$UPSTREAM;$PROXY_EXTRA
        }
    }
}
EOF

# -e: the error log before the config is read (Debian's build defaults to stderr)
"$NGINX" -p "$DIR/" -c "$DIR/nginx.conf" -e "$DIR/error.log" 2>>"$DIR/error.log" &
NGINX_PID=$!
wait "$NGINX_PID"
rc=$?
# wait returns early (>128) when a trapped signal arrives; stop() has run then
NGINX_PID=
if [ "$rc" -ne 0 ]; then
  echo "nginx.sh: nginx exited with status $rc; its error log:" >&2
  cat "$DIR/error.log" >&2
fi
rm -rf "$DIR"
exit "$rc"
