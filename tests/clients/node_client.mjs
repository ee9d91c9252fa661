#!/usr/bin/env node
// Real socket.io-client (npm, pinned in tests/package.json) scenarios for
// the auction server.
//
// Usage:
//   node node_client.mjs URL --scenario NAME[,NAME...] [--transports default|websocket|polling]
//                        [--tag TAG] [--timeout SECONDS] [--wait SECONDS]
//
// Default transports are socket.io-client's own (polling, then upgrade to
// websocket). Scenarios run in the order given; bid, ack, namespace, binary
// and big-bid share one connection "A" (one Manager multiplexing "/" and,
// when needed, "/admin").
//
// Scenarios: bid, two-clients, late-joiner, ack, namespace, binary, big-bid,
// abrupt, bad-namespace (and abrupt-child, used internally by abrupt).
//
// Output: one JSON object per line on stdout, same shapes as py_client.py
// with "client": "node". Failure: a {"kind":"fail"} line, a message on
// stderr, exit 1 (3 on the hard timeout). Binary payloads are printed as
// {"_bytes_hex": "..."}.
import { Manager } from 'socket.io-client';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLIENT = 'node';
let current = null;

function jsonable(_k, v) {
  if (v && v.type === 'Buffer' && Array.isArray(v.data)) {
    return { _bytes_hex: Buffer.from(v.data).toString('hex') };
  }
  if (v instanceof ArrayBuffer) return { _bytes_hex: Buffer.from(v).toString('hex') };
  return v;
}

function out(kind, fields = {}) {
  process.stdout.write(JSON.stringify({ client: CLIENT, kind, ...fields }, jsonable) + '\n');
}

class Fail extends Error {}
function fail(msg) { throw new Fail(msg); }
function check(cond, msg) { if (!cond) fail(msg); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const deepEqual = (a, b) => JSON.stringify(a, jsonable) === JSON.stringify(b, jsonable);

function parseArgs(argv) {
  const a = { transports: 'default', tag: '', timeout: 20, wait: 5, scenario: null, url: null };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--scenario') a.scenario = argv[++i];
    else if (k === '--transports') a.transports = argv[++i];
    else if (k === '--tag') a.tag = argv[++i];
    else if (k === '--timeout') a.timeout = Number(argv[++i]);
    else if (k === '--wait') a.wait = Number(argv[++i]);
    else if (k.startsWith('--')) usage(`unknown option ${k}`);
    else if (!a.url) a.url = k;
    else usage(`unexpected argument ${k}`);
  }
  if (!a.url || !a.scenario) usage('URL and --scenario are required');
  if (!['default', 'websocket', 'polling', 'polling,websocket'].includes(a.transports)) {
    usage(`bad --transports ${a.transports}`);
  }
  return a;
}

function usage(msg) {
  process.stderr.write(`node_client: ${msg}\nusage: node node_client.mjs URL --scenario NAME[,NAME...] ` +
    '[--transports default|websocket|polling] [--tag TAG] [--timeout S] [--wait S]\n');
  process.exit(2);
}

class Peer {
  constructor(who, args, namespaces = ['/']) {
    this.who = who;
    this.args = args;
    this.namespaces = namespaces;
    this.waitMs = args.wait * 1000;
    this.events = []; // [event, nsp, args]
    this.waiters = [];
    this.sequence = [];
    this.connectErrors = [];
    const opts = { reconnection: false, timeout: this.waitMs, forceNew: true };
    if (args.transports !== 'default') opts.transports = args.transports.split(',');
    this.manager = new Manager(args.url, opts);
    this.sockets = {};
    for (const ns of namespaces) {
      const s = this.manager.socket(ns);
      s.onAny((event, ...a) => this._got(event, ns, a));
      s.on('connect', () => this.sequence.push(ns === '/' ? 'connect' : `${ns}:connect`));
      s.on('connect_error', (err) => this.connectErrors.push({ namespace: ns, message: err.message, data: err.data }));
      this.sockets[ns] = s;
    }
  }

  _got(event, ns, a) {
    this.sequence.push(ns === '/' ? event : `${ns}:${event}`);
    this.events.push([event, ns, a]);
    for (const w of this.waiters.slice()) w();
  }

  transport() { return this.manager.engine ? this.manager.engine.transport.name : null; }

  async connect() {
    const upgraded = new Promise((resolve) => {
      this.manager.on('open', () => this.manager.engine.on('upgrade', (t) => resolve(t.name)));
    });
    await Promise.all(Object.entries(this.sockets).map(([ns, s]) => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Fail(`${this.who}: connect to ${ns} timed out`)), this.waitMs);
      s.once('connect', () => { clearTimeout(t); resolve(); });
      s.once('connect_error', (err) => {
        clearTimeout(t);
        reject(new Fail(`${this.who}: connect_error on ${ns}: ${err.message} ${JSON.stringify(err.data)}`));
      });
    })));
    out('connected', { who: this.who, namespaces: this.namespaces, transport: this.transport() });
    if (this.args.transports === 'default' || this.args.transports === 'polling,websocket') {
      if (this.transport() !== 'websocket') {
        await Promise.race([upgraded, sleep(this.waitMs)]);
      }
      check(this.transport() === 'websocket', `${this.who}: no upgrade to websocket (transport=${this.transport()})`);
      out('upgraded', { who: this.who, transport: this.transport() });
    }
    return this;
  }

  // Wait for event on nsp whose args satisfy pred; consumes only the match.
  expect(event, pred = () => true, nsp = '/') {
    return new Promise((resolve, reject) => {
      const look = () => {
        const i = this.events.findIndex(([e, n, a]) => e === event && n === nsp && pred(a));
        if (i < 0) return false;
        const [[, , a]] = this.events.splice(i, 1);
        out('recv', { who: this.who, event, namespace: nsp, args: a });
        resolve(a);
        return true;
      };
      if (look()) return;
      let timer = null;
      const w = () => { if (look()) { clearTimeout(timer); this.waiters.splice(this.waiters.indexOf(w), 1); } };
      this.waiters.push(w);
      timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Fail(`${this.who}: timed out waiting for ${JSON.stringify(event)} on ${nsp}; ` +
          `got instead ${JSON.stringify(this.events.map(([e, n]) => [e, n]))}`));
      }, this.waitMs);
    });
  }

  emit(event, args, nsp = '/') {
    this.sockets[nsp].emit(event, ...args);
    out('sent', { who: this.who, event, namespace: nsp, args });
  }

  async call(event, args, nsp = '/') {
    out('sent', { who: this.who, event, namespace: nsp, args, ack: true });
    const ackArgs = await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Fail(`${this.who}: no ack for ${event} within ${this.args.wait}s`)), this.waitMs);
      this.sockets[nsp].emit(event, ...args, (...a) => { clearTimeout(t); resolve(a); });
    });
    out('ack', { who: this.who, event, namespace: nsp, args: ackArgs });
    return ackArgs;
  }

  disconnect() {
    let any = false;
    for (const s of Object.values(this.sockets)) {
      if (s.connected) any = true;
      s.disconnect();
    }
    this.manager.engine?.close();
    if (any) out('disconnected', { who: this.who });
  }
}

class Session {
  constructor(args) { this.args = args; this.peers = {}; this.needsAdmin = false; }
  async peer(who, namespaces = ['/']) {
    if (!this.peers[who]) this.peers[who] = await new Peer(who, this.args, namespaces).connect();
    return this.peers[who];
  }
  shared() { return this.peer('A', this.needsAdmin ? ['/', '/admin'] : ['/']); }
  item(name) { return this.args.tag ? `${name}-${this.args.tag}` : name; }
  close() { for (const p of Object.values(this.peers)) p.disconnect(); this.peers = {}; }
}

const isValue = (item, bid) => (a) => a.length === 1 && a[0] && a[0].item === item && a[0].bid === bid;

const SCENARIOS = {
  async bid(s) {
    const a = await s.shared();
    const v = { item: s.item('lamp'), bid: 13, bidder: 'nia' };
    a.emit('replace old value', [v]);
    const got = await a.expect('replaced values', isValue(v.item, 13));
    check(deepEqual(got, [v]), `broadcast payload differs: ${JSON.stringify(got)}`);
  },
  async 'two-clients'(s) {
    const a = await s.peer('A');
    const b = await s.peer('B');
    const va = { item: s.item('vase'), bid: 6, bidder: 'nia' };
    a.emit('replace old value', [va]);
    for (const p of [a, b]) check(deepEqual(await p.expect('replaced values', isValue(va.item, 6)), [va]), `${p.who}: payload`);
    const vb = { item: s.item('vase'), bid: 8, bidder: 'ben' };
    b.emit('replace old value', [vb]);
    for (const p of [a, b]) check(deepEqual(await p.expect('replaced values', isValue(vb.item, 8)), [vb]), `${p.who}: payload`);
  },
  async 'late-joiner'(s) {
    const a = await s.peer('A');
    const item = s.item('clock');
    const bid = 2000 + (process.pid % 1000); // unique per run: stale state can't pass
    const v = { item, bid, bidder: 'nia' };
    a.emit('replace old value', [v]);
    await a.expect('replaced values', isValue(item, bid));
    const late = await new Peer('late', s.args).connect();
    try {
      const got = await late.expect('replaced values', isValue(item, bid));
      check(deepEqual(got, [v]), `late joiner got ${JSON.stringify(got)}`);
      await sleep(200);
      out('order', { who: 'late', sequence: late.sequence });
    } finally { late.disconnect(); }
  },
  // The seed's own event with a callback: python-socketio acknowledges every handled event that
  // asks, with the handler's return value (none, so no arguments).
  async 'seed-ack'(s) {
    const a = await s.shared();
    const v = { item: s.item('stool'), bid: 43, bidder: 'nia' };
    const ack = await a.call('replace old value', [v]);
    check(deepEqual(ack, []), `ack args ${JSON.stringify(ack)}, want []`);
    await a.expect('replaced values', isValue(v.item, 43));
  },
  async ack(s) {
    const a = await s.shared();
    const v = { item: s.item('chair'), bid: 41, bidder: 'nia' };
    const ack = await a.call('bid-with-ack', [v]);
    check(deepEqual(ack, [{ ok: true, bid: v }]), `ack payload ${JSON.stringify(ack)}`);
    await a.expect('replaced values', isValue(v.item, 41));
  },
  async namespace(s) {
    const a = await s.shared();
    check(a.namespaces.includes('/admin'), 'internal: A not on /admin');
    const got = await a.expect('welcome', () => true, '/admin');
    check(deepEqual(got, [{ nsp: '/admin' }]), `welcome payload ${JSON.stringify(got)}`);
    const args = ['hello', 42, { x: [1, 2] }];
    const ack = await a.call('ping-me', args, '/admin');
    check(deepEqual(ack, args), `ping-me ack ${JSON.stringify(ack)}`);
    const ack1 = await a.call('ping-me', ['solo'], '/admin');
    check(deepEqual(ack1, ['solo']), `ping-me single-arg ack ${JSON.stringify(ack1)}`);
  },
  async binary(s) {
    const a = await s.shared();
    const data = Buffer.concat([Buffer.from([...Array(256).keys()]), Buffer.from('dispel')]);
    a.emit('upload', [data]);
    const got = await a.expect('uploaded');
    check(got.length === 2, `uploaded should have 2 args, got ${got.length}`);
    check(deepEqual(got[0], { size: data.length }), `size arg ${JSON.stringify(got[0])}`);
    const back = Buffer.isBuffer(got[1]) ? got[1] : Buffer.from(got[1]);
    check(back.equals(data), 'uploaded bytes differ');
  },
  async 'big-bid'(s) {
    // > 1024 bytes, so socket.io-client's permessage-deflate threshold
    // (1024) is passed and the client compresses its frame too
    const a = await s.shared();
    const v = { item: s.item('rug'), bid: 77, bidder: 'nia', note: 'very nice rug '.repeat(120) };
    a.emit('replace old value', [v]);
    const got = await a.expect('replaced values', isValue(v.item, 77));
    check(deepEqual(got, [v]), 'big payload differs');
  },
  async 'bad-namespace'(s) {
    const p = new Peer('bad', s.args, ['/nope']);
    try {
      await p.connect();
    } catch (e) {
      check(p.connectErrors.length > 0, `no connect_error event (${e.message})`);
      for (const ce of p.connectErrors) out('connect_error', { who: 'bad', ...ce });
      return;
    } finally { p.disconnect(); }
    fail('connection to /nope was accepted');
  },
  async abrupt(s) {
    const self = fileURLToPath(import.meta.url);
    const r = spawnSync(process.execPath, [self, s.args.url, '--scenario', 'abrupt-child',
      '--transports', s.args.transports, '--tag', s.args.tag], { encoding: 'utf8', timeout: s.args.wait * 3000 });
    for (const line of r.stdout.split('\n').filter(Boolean)) out('child', { line: JSON.parse(line) });
    check(r.status === 0 && r.stdout.includes('"connected"'), `abrupt child failed rc=${r.status}: ${(r.stderr || '').trim()}`);
    await sleep(300);
    const p = await new Peer('after', s.args).connect();
    try {
      const v = { item: s.item('after-abrupt'), bid: 2, bidder: 'zed' };
      p.emit('replace old value', [v]);
      await p.expect('replaced values', isValue(v.item, 2));
    } finally { p.disconnect(); }
  },
  async 'abrupt-child'(s) {
    const p = await s.peer('child');
    const v = { item: s.item('abrupt'), bid: 98, bidder: 'gone' };
    p.emit('replace old value', [v]);
    await p.expect('replaced values', isValue(v.item, 98));
    out('exiting', { who: 'child', how: 'process.exit without close' });
    process.exit(0); // no DISCONNECT, no engine.io close, no websocket close
  },
};

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const names = args.scenario.split(',').filter(Boolean);
  for (const n of names) if (!SCENARIOS[n]) usage(`unknown scenario ${n}`);
  setTimeout(() => {
    out('fail', { scenario: current, error: `hard timeout ${args.timeout}s` });
    process.stderr.write(`node_client: FAIL: hard timeout after ${args.timeout}s in ${current}\n`);
    process.exit(3);
  }, args.timeout * 1000);
  const s = new Session(args);
  s.needsAdmin = names.includes('namespace');
  const passed = [];
  try {
    for (const n of names) {
      current = n;
      await SCENARIOS[n](s);
      out('pass', { scenario: n });
      passed.push(n);
    }
    current = 'disconnect';
    s.close();
  } catch (e) {
    out('fail', { scenario: current, error: e.message });
    process.stderr.write(`node_client: FAIL in ${current}: ${e.message}\n`);
    try { s.close(); } catch { /* ignore */ }
    await sleep(50);
    process.exit(1);
  }
  out('done', { passed });
  await sleep(100); // let close frames / close packets go out
  process.exit(0);
}

main();
