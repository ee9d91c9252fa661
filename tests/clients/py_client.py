#!/usr/bin/env python3
"""Real python-socketio client scenarios for the auction server.

Usage:
    py_client.py URL --scenario NAME[,NAME...] [--transports websocket|polling|polling,websocket]
                 [--tag TAG] [--timeout SECONDS] [--wait SECONDS] [--idle SECONDS]

URL is the server base URL, e.g. http://127.0.0.1:5000 (Socket.IO path
/socket.io). Scenarios run in the order given; scenarios that only need one
client (bid, ack, namespace, binary) share one connection "A", so
`--scenario bid,ack,binary` is one connection doing all three.

Scenarios: bid, idle (stay connected --idle s, then bid), two-clients, late-joiner, ack, namespace, binary, abrupt,
bad-namespace (and abrupt-child, used internally by abrupt).

Output: one JSON object per line on stdout, each with "client": "py".
  {"client":"py","kind":"connected","who":"A","namespaces":[...],"transport":"websocket"}
  {"client":"py","kind":"upgraded","who":"A","transport":"websocket"}   (polling,websocket only)
  {"client":"py","kind":"recv","who":"A","event":"replaced values","args":[{...}]}
  {"client":"py","kind":"ack","who":"A","event":"bid-with-ack","args":[{...}]}
  {"client":"py","kind":"order","who":"late","sequence":["replaced values", ..., "connect"]}
  {"client":"py","kind":"connect_error","who":"bad","namespace":"/nope","data":...}
  {"client":"py","kind":"disconnected","who":"A"}
  {"client":"py","kind":"pass","scenario":"bid"}
  {"client":"py","kind":"done","passed":["bid",...]}
On failure: {"client":"py","kind":"fail","scenario":...,"error":...} on
stdout, a message on stderr, exit status 1 (3 on the hard timeout).
Binary payloads are printed as {"_bytes_hex": "..."}.
"""
import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time

import socketio

CLIENT = 'py'
CURRENT = {'scenario': None}


def out(kind, **fields):
    obj = {'client': CLIENT, 'kind': kind}
    obj.update(fields)
    sys.stdout.write(json.dumps(obj, default=_jsonable) + '\n')
    sys.stdout.flush()


def _jsonable(x):
    if isinstance(x, (bytes, bytearray)):
        return {'_bytes_hex': bytes(x).hex()}
    if isinstance(x, tuple):
        return list(x)
    raise TypeError(repr(x))


class Fail(Exception):
    pass


def fail(msg):
    raise Fail(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


class Peer:
    """One python-socketio client that records everything it receives."""

    def __init__(self, who, url, transports, namespaces=('/',), wait=5.0):
        self.who = who
        self.url = url
        self.transports = transports
        self.namespaces = list(namespaces)
        self.wait_s = wait
        self.events = queue.Queue()
        self.sequence = []  # arrival order of events incl. "connect"
        self.connect_errors = []
        self.sio = socketio.Client(reconnection=False)
        for ns in self.namespaces:
            # per-namespace catch-all: a '*' namespace catch-all would be
            # shadowed by the per-namespace connect handlers below
            self.sio.on('*', self._mk_any(ns), namespace=ns)
            self.sio.on('connect', self._mk_connect(ns), namespace=ns)
            self.sio.on('connect_error', self._mk_cerr(ns), namespace=ns)

    def _mk_connect(self, ns):
        def h():
            self.sequence.append(('connect', ns))
        return h

    def _mk_cerr(self, ns):
        def h(data=None):
            self.connect_errors.append((ns, data))
        return h

    def _mk_any(self, ns):
        def h(event, *args):
            self.sequence.append((event, ns))
            self.events.put((event, ns, list(args)))
        return h

    def connect(self):
        self.sio.connect(self.url, transports=self.transports,
                         namespaces=self.namespaces, wait_timeout=self.wait_s)
        out('connected', who=self.who, namespaces=self.namespaces,
            transport=self.sio.transport())
        if self.transports == ['polling', 'websocket']:
            deadline = time.monotonic() + self.wait_s
            while self.sio.transport() != 'websocket' and \
                    time.monotonic() < deadline:
                time.sleep(0.02)
            check(self.sio.transport() == 'websocket',
                  f'{self.who}: no upgrade to websocket '
                  f'(transport={self.sio.transport()})')
            out('upgraded', who=self.who, transport=self.sio.transport())
        return self

    def expect(self, event, pred=lambda args: True, namespace='/',
               timeout=None):
        """Wait for `event` on `namespace` whose args satisfy pred; events
        that don't match are kept in order for later expects."""
        deadline = time.monotonic() + (timeout or self.wait_s)
        skipped = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    fail(f'{self.who}: timed out waiting for {event!r} on '
                         f'{namespace}; got instead '
                         f'{[(e, n) for e, n, _ in skipped]!r}')
                try:
                    ev, ns, args = self.events.get(timeout=left)
                except queue.Empty:
                    continue
                if ev == event and ns == namespace and pred(args):
                    out('recv', who=self.who, event=ev, namespace=ns,
                        args=args)
                    return args
                skipped.append((ev, ns, args))
        finally:
            for item in skipped:
                self.events.put(item)

    def emit(self, event, *args, namespace='/'):
        self.sio.emit(event, args if len(args) != 1 else args[0],
                      namespace=namespace)
        out('sent', who=self.who, event=event, namespace=namespace,
            args=list(args))

    def call(self, event, *args, namespace='/'):
        out('sent', who=self.who, event=event, namespace=namespace,
            args=list(args), ack=True)
        try:
            r = self.sio.call(event, args if len(args) != 1 else args[0],
                              namespace=namespace, timeout=self.wait_s)
        except socketio.exceptions.TimeoutError:
            fail(f'{self.who}: no ack for {event!r} within {self.wait_s}s')
        # python-socketio returns one value for one arg, a tuple for more
        ack_args = list(r) if isinstance(r, tuple) else \
            ([] if r is None else [r])
        out('ack', who=self.who, event=event, namespace=namespace,
            args=ack_args)
        return ack_args

    def disconnect(self):
        if self.sio.connected:
            self.sio.disconnect()
            out('disconnected', who=self.who)


class Session:
    def __init__(self, args):
        self.url = args.url
        self.transports = args.transports.split(',')
        self.tag = args.tag
        self.wait_s = args.wait
        self.peers = {}
        self.needs_admin = False
        self.idle = args.idle

    def peer(self, who, namespaces=('/',)):
        p = self.peers.get(who)
        if p is None:
            p = Peer(who, self.url, self.transports, namespaces,
                     self.wait_s).connect()
            self.peers[who] = p
        return p

    def shared(self):
        ns = ('/', '/admin') if self.needs_admin else ('/',)
        return self.peer('A', ns)

    def close(self):
        # in parallel: against Flask-SocketIO (werkzeug) each websocket
        # disconnect takes ~3 s, because the server keeps the TCP connection
        # open after the close handshake and websocket-client waits for it
        ts = [threading.Thread(target=p.disconnect)
              for p in self.peers.values()]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.peers.clear()

    def item(self, name):
        return f'{name}-{self.tag}' if self.tag else name


def is_value(item, bid):
    return lambda a: len(a) == 1 and isinstance(a[0], dict) and \
        a[0].get('item') == item and a[0].get('bid') == bid


def sc_bid(s):
    a = s.shared()
    v = {'item': s.item('lamp'), 'bid': 12, 'bidder': 'ana'}
    a.emit('replace old value', v)
    got = a.expect('replaced values', is_value(v['item'], 12))
    check(got == [v], f'broadcast payload differs: {got!r} != {[v]!r}')


def sc_two_clients(s):
    a = s.peer('A')
    b = s.peer('B')
    va = {'item': s.item('vase'), 'bid': 5, 'bidder': 'ana'}
    a.emit('replace old value', va)
    for p in (a, b):
        check(p.expect('replaced values', is_value(va['item'], 5)) == [va],
              f'{p.who}: wrong payload')
    vb = {'item': s.item('vase'), 'bid': 7, 'bidder': 'bob'}
    b.emit('replace old value', vb)
    for p in (a, b):
        check(p.expect('replaced values', is_value(vb['item'], 7)) == [vb],
              f'{p.who}: wrong payload')


def sc_late_joiner(s):
    a = s.peer('A')
    item = s.item('clock')
    bid = 30 + (os.getpid() % 1000)  # unique per run: stale state can't pass
    v = {'item': item, 'bid': bid, 'bidder': 'ana'}
    a.emit('replace old value', v)
    a.expect('replaced values', is_value(item, bid))
    late = Peer('late', s.url, s.transports, ('/',), s.wait_s).connect()
    try:
        got = late.expect('replaced values', is_value(item, bid))
        check(got == [v], f'late joiner got {got!r}, want {[v]!r}')
        time.sleep(0.2)  # let any remaining on-connect emits arrive
        out('order', who='late',
            sequence=[e if ns == '/' else f'{ns}:{e}'
                      for e, ns in late.sequence])
    finally:
        late.disconnect()


def sc_seed_ack(s):
    # The seed's own event with `call`: python-socketio acknowledges every handled event that
    # asks, with the handler's return value (None: an ack with no arguments).
    a = s.shared()
    v = {'item': s.item('stool'), 'bid': 42, 'bidder': 'ana'}
    ack = a.call('replace old value', v)
    check(ack == [], f'ack arguments {ack!r}, want none')
    a.expect('replaced values', is_value(v['item'], 42))


def sc_ack(s):
    a = s.shared()
    v = {'item': s.item('chair'), 'bid': 40, 'bidder': 'ana'}
    ack = a.call('bid-with-ack', v)
    check(ack == [{'ok': True, 'bid': v}], f'ack payload {ack!r}')
    a.expect('replaced values', is_value(v['item'], 40))


def sc_namespace(s):
    a = s.shared()
    check('/admin' in a.namespaces, 'internal: A not on /admin')
    got = a.expect('welcome', namespace='/admin')
    check(got == [{'nsp': '/admin'}], f'welcome payload {got!r}')
    args = ['hello', 42, {'x': [1, 2]}]
    ack = a.call('ping-me', *args, namespace='/admin')
    check(ack == args, f'ping-me ack {ack!r} != {args!r}')
    ack1 = a.call('ping-me', 'solo', namespace='/admin')
    check(ack1 == ['solo'], f'ping-me single-arg ack {ack1!r}')


def sc_binary(s):
    a = s.shared()
    data = bytes(range(256)) + b'dispel'
    a.emit('upload', data)
    got = a.expect('uploaded')
    check(len(got) == 2, f'uploaded should have 2 args, got {got!r}')
    check(got[0] == {'size': len(data)}, f'size arg {got[0]!r}')
    check(isinstance(got[1], (bytes, bytearray)) and bytes(got[1]) == data,
          'uploaded bytes differ')


def sc_bad_namespace(s):
    p = Peer('bad', s.url, s.transports, ('/nope',), s.wait_s)
    try:
        p.connect()
    except socketio.exceptions.ConnectionError as e:
        check(p.connect_errors, f'no connect_error event ({e})')
        for ns, data in p.connect_errors:
            out('connect_error', who='bad', namespace=ns, data=data,
                exception=str(e))
        return
    finally:
        p.disconnect()
    fail('connection to /nope was accepted')


def sc_abrupt(s):
    cmd = [sys.executable, os.path.abspath(__file__), s.url,
           '--scenario', 'abrupt-child', '--transports',
           ','.join(s.transports), '--tag', s.tag]
    r = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=s.wait_s * 3)
    for line in r.stdout.splitlines():
        out('child', line=json.loads(line))
    check(r.returncode == 0 and '"connected"' in r.stdout,
          f'abrupt child failed rc={r.returncode}: {r.stderr.strip()}')
    # the server must survive the abrupt close and keep serving others
    time.sleep(0.3)
    p = Peer('after', s.url, s.transports, ('/',), s.wait_s).connect()
    try:
        v = {'item': s.item('after-abrupt'), 'bid': 1, 'bidder': 'zed'}
        p.emit('replace old value', v)
        p.expect('replaced values', is_value(v['item'], 1))
    finally:
        p.disconnect()


def sc_abrupt_child(s):
    p = s.peer('child')
    v = {'item': s.item('abrupt'), 'bid': 99, 'bidder': 'gone'}
    p.emit('replace old value', v)
    p.expect('replaced values', is_value(v['item'], 99))
    out('exiting', who='child', how='os._exit without close')
    sys.stdout.flush()
    os._exit(0)  # no DISCONNECT, no engine.io close, no websocket close


def sc_idle(s):
    # keep A connected (e.g. to capture Engine.IO ping/pong), then check it
    # still works
    a = s.shared()
    time.sleep(s.idle)
    v = {'item': s.item('lamp'), 'bid': 14, 'bidder': 'ana'}
    a.emit('replace old value', v)
    a.expect('replaced values', is_value(v['item'], 14))


SCENARIOS = {
    'bid': sc_bid,
    'idle': sc_idle,
    'two-clients': sc_two_clients,
    'late-joiner': sc_late_joiner,
    'seed-ack': sc_seed_ack,
    'ack': sc_ack,
    'namespace': sc_namespace,
    'binary': sc_binary,
    'abrupt': sc_abrupt,
    'bad-namespace': sc_bad_namespace,
    'abrupt-child': sc_abrupt_child,
}


def main():
    ap = argparse.ArgumentParser(description='python-socketio scenarios')
    ap.add_argument('url')
    ap.add_argument('--scenario', required=True,
                    help='comma-separated: ' + ', '.join(SCENARIOS))
    ap.add_argument('--transports', default='polling,websocket',
                    choices=['websocket', 'polling', 'polling,websocket'])
    ap.add_argument('--tag', default='',
                    help='suffix for item names (default: none). Keep the '
                    'set of item names small: the server replays every item '
                    'on connect, and python-engineio polling clients abort '
                    'on a poll response with more than 16 packets')
    ap.add_argument('--idle', type=float, default=3.0,
                    help='seconds the idle scenario stays connected')
    ap.add_argument('--timeout', type=float, default=20.0,
                    help='hard timeout for the whole run (s)')
    ap.add_argument('--wait', type=float, default=5.0,
                    help='timeout for one expected event (s)')
    args = ap.parse_args()
    names = [n for n in args.scenario.split(',') if n]
    for n in names:
        if n not in SCENARIOS:
            ap.error(f'unknown scenario {n!r}')

    def hard_timeout():
        out('fail', scenario=CURRENT['scenario'],
            error=f'hard timeout {args.timeout}s')
        sys.stderr.write(f'py_client: FAIL: hard timeout after '
                         f'{args.timeout}s in {CURRENT["scenario"]}\n')
        sys.stderr.flush()
        os._exit(3)
    t = threading.Timer(args.timeout, hard_timeout)
    t.daemon = True
    t.start()

    s = Session(args)
    s.needs_admin = 'namespace' in names
    passed = []
    try:
        for n in names:
            CURRENT['scenario'] = n
            SCENARIOS[n](s)
            out('pass', scenario=n)
            passed.append(n)
        CURRENT['scenario'] = 'disconnect'
        s.close()
    except (Fail, socketio.exceptions.SocketIOError, OSError,
            subprocess.SubprocessError) as e:
        out('fail', scenario=CURRENT['scenario'], error=str(e))
        sys.stderr.write(f'py_client: FAIL in {CURRENT["scenario"]}: {e}\n')
        try:
            s.close()
        except Exception:
            pass
        os._exit(1)
    out('done', passed=passed)
    sys.stdout.flush()
    os._exit(0)  # don't wait for lingering client threads


if __name__ == '__main__':
    main()
