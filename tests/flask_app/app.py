#!/usr/bin/env python3
"""Reference auction app in real Flask-SocketIO (threading mode, the default).

This is the app that `dispel serve` reimplements, and the oracle of the
differential tests (tests/it/differential.rs): by default it is exactly the
course's seed app, one handler:

    @socketio.on('replace old value')
    def handle_new_value(message):
        emit('replaced values', message, broadcast=True)

With --extras it also has what `dispel serve --extras` adds for demos (see
below). The test clients under tests/clients/ are validated against it, and
the captures under traces/flask/ were recorded from it.

Usage:
    python app.py --port P [--host 127.0.0.1] [--ping-interval S]
                  [--ping-timeout S] [--max-payload N] [--extras] [--no-upgrades] [--log]
                  [--async-mode threading|eventlet]

--async-mode eventlet needs eventlet installed (tests/bench/fanout.sh makes a
separate venv for it); the default is threading, as before.

Behaviour:
  * GET /auctions           -> the auction page (inline template, no CDN).
  * GET /static/socket.io.min.js -> the socket.io-client browser bundle taken
    from tests/node_modules (installed by tests/setup.sh); 404 if absent.
  * namespace "/":
      - `replace old value` {obj}: emit `replaced values` obj to every client
        (broadcast=True, sender included). An ack id gets `[]` (python-socketio
        acks every handled event that asks, with the handler's return value).
  * with --extras:
      - on connect to "/": one `replaced values` emit per known item, to the new
        client only, payload exactly as last received for that item, in the
        order the items were first seen.
      - `replace old value` also remembers obj by obj["item"].
      - `bid-with-ack` {obj}: same as `replace old value`, and the ack is
        {"ok": true, "bid": obj}.
      - `upload` <bytes>: emit `uploaded` {"size": N}, <same bytes> to the
        sender only.
  * namespace "/admin":
      - on connect: emit `welcome` {"nsp": "/admin"} to the new client.
      - `ping-me` *args: acknowledged with the same arguments.
  * any other namespace: refused by python-socketio with CONNECT_ERROR.
"""
import argparse
import os
import sys


def _async_mode_from_argv():
    # Read before anything else is imported: eventlet must monkey-patch first.
    argv = sys.argv[1:]
    for i, a in enumerate(argv):
        if a == '--async-mode' and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith('--async-mode='):
            return a.split('=', 1)[1]
    return 'threading'


ASYNC_MODE = _async_mode_from_argv()
EXTRAS = '--extras' in sys.argv[1:]


def _message_queue_from_argv():
    # SocketIO(app, message_queue=...) is made at import time, before argparse runs.
    argv = sys.argv[1:]
    for i, a in enumerate(argv):
        if a == '--message-queue' and i + 1 < len(argv):
            return argv[i + 1]
    return None


MESSAGE_QUEUE = _message_queue_from_argv()
if ASYNC_MODE == 'eventlet':
    import eventlet
    eventlet.monkey_patch()

import threading  # noqa: E402

from flask import Flask, abort, render_template_string, send_file
from flask_socketio import SocketIO, emit

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_BUNDLE = os.path.join(HERE, '..', 'node_modules', 'socket.io-client',
                             'dist', 'socket.io.min.js')

PAGE = """<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>Auctions</title>
</head>
<body>
<h1>Auctions</h1>
<form id="bid-form">
  <input id="item" name="item" placeholder="item" value="">
  <input id="bid" name="bid" type="number" placeholder="bid" value="">
  <input id="bidder" name="bidder" placeholder="bidder" value="">
  <button id="submit" type="submit">Bid</button>
</form>
<table id="values"><thead><tr><th>item</th><th>bid</th><th>bidder</th></tr></thead>
<tbody></tbody></table>
<pre id="log"></pre>
<script src="/static/socket.io.min.js"></script>
<script>
  var socket = io();
  var rows = {};
  function log(s) { document.getElementById('log').textContent += s + "\\n"; }
  socket.on('connect', function () { log('connected ' + socket.id); });
  socket.on('replaced values', function (v) {
    log('replaced values ' + JSON.stringify(v));
    var tr = rows[v.item];
    if (!tr) {
      tr = document.createElement('tr');
      tr.setAttribute('data-item', v.item);
      document.querySelector('#values tbody').appendChild(tr);
      rows[v.item] = tr;
    }
    tr.innerHTML = '';
    [v.item, v.bid, v.bidder].forEach(function (x) {
      var td = document.createElement('td');
      td.textContent = String(x);
      tr.appendChild(td);
    });
  });
  document.getElementById('bid-form').addEventListener('submit', function (e) {
    e.preventDefault();
    socket.emit('replace old value', {
      item: document.getElementById('item').value,
      bid: Number(document.getElementById('bid').value),
      bidder: document.getElementById('bidder').value
    });
  });
</script>
</body>
</html>
"""

app = Flask(__name__)
app.config['SECRET_KEY'] = 'dispel-reference-app'
socketio = SocketIO(app, async_mode=ASYNC_MODE, message_queue=MESSAGE_QUEUE)

_lock = threading.Lock()
_current = {}  # item -> last payload received for it (insertion ordered)


@app.route('/auctions')
def auctions():
    return render_template_string(PAGE)


@app.route('/static/socket.io.min.js')
def client_bundle():
    if not os.path.exists(CLIENT_BUNDLE):
        abort(404)
    return send_file(os.path.abspath(CLIENT_BUNDLE),
                     mimetype='application/javascript')


@socketio.on('replace old value')
def handle_new_value(message):
    if EXTRAS:
        _remember(message)
    emit('replaced values', message, broadcast=True)


def _remember(data):
    if isinstance(data, dict) and 'item' in data:
        with _lock:
            _current[str(data['item'])] = data


if EXTRAS:
    @socketio.on('connect')
    def on_connect(auth=None):
        with _lock:
            values = list(_current.values())
        for value in values:
            emit('replaced values', value)

    @socketio.on('bid-with-ack')
    def on_bid_with_ack(data):
        _remember(data)
        emit('replaced values', data, broadcast=True)
        return {'ok': True, 'bid': data}

    @socketio.on('upload')
    def on_upload(data):
        size = len(data) if isinstance(data, (bytes, bytearray)) else -1
        # python-socketio sends a tuple as multiple event arguments
        emit('uploaded', ({'size': size}, data))

    @socketio.on('connect', namespace='/admin')
    def on_admin_connect(auth=None):
        emit('welcome', {'nsp': '/admin'})

    @socketio.on('ping-me', namespace='/admin')
    def on_ping_me(*args):
        return args


if MESSAGE_QUEUE:
    # Calls a worker makes about clients of other processes, from HTTP routes (tests/it/mq.rs):
    # python-socketio publishes each on the queue when the client is not its own.
    from flask import jsonify, request
    from flask_socketio import close_room, join_room, leave_room

    _answers = []

    @app.route('/mq/join')
    def mq_join():
        join_room(request.args['room'], sid=request.args['sid'], namespace='/')
        return 'ok'

    @app.route('/mq/leave')
    def mq_leave():
        leave_room(request.args['room'], sid=request.args['sid'], namespace='/')
        return 'ok'

    @app.route('/mq/close')
    def mq_close():
        close_room(request.args['room'], namespace='/')
        return 'ok'

    @app.route('/mq/emit')
    def mq_emit():
        socketio.emit('notice', request.args['text'], to=request.args.get('to'),
                      skip_sid=request.args.get('skip'))
        return 'ok'

    @app.route('/mq/ask')
    def mq_ask():
        socketio.emit('question', {'q': 'how much?'}, to=request.args['sid'],
                      callback=lambda *args: _answers.append(list(args)))
        return 'ok'

    @app.route('/mq/answers')
    def mq_answers():
        return jsonify(_answers)

    @app.route('/mq/disconnect')
    def mq_disconnect():
        socketio.server.disconnect(request.args['sid'], namespace='/')
        return 'ok'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--ping-interval', type=float, default=None,
                        help='Engine.IO pingInterval in seconds (default: '
                        'python-engineio default, 25)')
    parser.add_argument('--ping-timeout', type=float, default=None,
                        help='Engine.IO pingTimeout in seconds (default 20)')
    parser.add_argument('--max-payload', type=int, default=None,
                        help='Engine.IO maxPayload in bytes (default 1000000)')
    parser.add_argument('--extras', action='store_true',
                        help="the demo extras of `dispel serve --extras`")
    parser.add_argument('--async-mode', choices=['threading', 'eventlet'],
                        default='threading',
                        help='Flask-SocketIO async mode (read at import time)')
    parser.add_argument('--no-upgrades', action='store_true',
                        help='allow_upgrades=False: the OPEN offers no upgrade '
                        '(what a missing WebSocket server does too)')
    parser.add_argument('--message-queue', default=None,
                        help="SocketIO(app, message_queue=URL): several "
                        "processes as one, through Redis (read at import time)")
    parser.add_argument('--log', action='store_true',
                        help='enable socketio/engineio packet logging')
    args = parser.parse_args()
    if args.ping_interval is not None:
        socketio.server.eio.ping_interval = args.ping_interval
    if args.ping_timeout is not None:
        socketio.server.eio.ping_timeout = args.ping_timeout
    if args.max_payload is not None:
        socketio.server.eio.max_http_buffer_size = args.max_payload
    if args.no_upgrades:
        socketio.server.eio.allow_upgrades = False
    if args.log:
        socketio.server.logger.setLevel('INFO')
        socketio.server.eio.logger.setLevel('INFO')
    print(f'async_mode={socketio.async_mode} listening on '
          f'http://{args.host}:{args.port}', file=sys.stderr, flush=True)
    socketio.run(app, host=args.host, port=args.port,
                 allow_unsafe_werkzeug=True, use_reloader=False)


if __name__ == '__main__':
    main()
