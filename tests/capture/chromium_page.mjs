#!/usr/bin/env node
// Drive the /auctions page in headless Debian chromium over the DevTools
// protocol (only the pinned `ws` package), typing a bid into the page's own
// form so the page's own JS emits it.
//
//   node chromium_page.mjs URL [--screenshot FILE.png] [--timeout S]
//
// Prints JSON lines like the other clients ("client": "chromium"); exits
// non-zero with a message on failure. Needs /usr/bin/chromium
// (tests/setup.sh --with-chromium). CHROMIUM=path overrides the binary.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';

const args = process.argv.slice(2);
const url = args[0];
let screenshot = null;
let timeoutS = 30;
for (let i = 1; i < args.length; i++) {
  if (args[i] === '--screenshot') screenshot = args[++i];
  else if (args[i] === '--timeout') timeoutS = Number(args[++i]);
  else { console.error(`chromium_page: unknown option ${args[i]}`); process.exit(2); }
}
if (!url) { console.error('usage: node chromium_page.mjs URL [--screenshot FILE] [--timeout S]'); process.exit(2); }

const out = (kind, f = {}) => process.stdout.write(JSON.stringify({ client: 'chromium', kind, ...f }) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const bin = process.env.CHROMIUM || '/usr/bin/chromium';
if (!existsSync(bin)) { console.error(`chromium_page: ${bin} not found (tests/setup.sh --with-chromium)`); process.exit(4); }

const profile = mkdtempSync(join(tmpdir(), 'dispel-chromium-'));
const chrome = spawn(bin, [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-default-apps', '--disable-extensions', '--mute-audio',
  `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank',
], { stdio: ['ignore', 'ignore', 'pipe'] });
let chromeErr = '';
chrome.stderr.on('data', (d) => { chromeErr += d; });

let done = false;
function finish(code, msg) {
  if (done) return;
  done = true;
  if (msg) { out('fail', { error: msg }); console.error(`chromium_page: FAIL: ${msg}`); }
  try { chrome.kill('SIGTERM'); } catch { /* gone */ }
  setTimeout(() => {
    try { chrome.kill('SIGKILL'); } catch { /* gone */ }
    rmSync(profile, { recursive: true, force: true });
    process.exit(code);
  }, 500);
}
setTimeout(() => finish(3, `hard timeout ${timeoutS}s`), timeoutS * 1000);
chrome.on('exit', (c) => { if (!done) finish(1, `chromium exited early (${c}): ${chromeErr.slice(-500)}`); });

async function devtoolsEndpoint() {
  const f = join(profile, 'DevToolsActivePort');
  for (let i = 0; i < 200; i++) {
    if (existsSync(f)) {
      const [port, path] = readFileSync(f, 'utf8').split('\n');
      if (port && path) return `ws://127.0.0.1:${port}${path}`;
    }
    await sleep(50);
  }
  throw new Error('chromium did not write DevToolsActivePort');
}

function cdp(wsUrl) {
  const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
  let id = 0;
  const pending = new Map();
  ws.on('message', (m) => {
    const msg = JSON.parse(m.toString());
    if (msg.id && pending.has(msg.id)) {
      const { resolve, reject } = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) reject(new Error(JSON.stringify(msg.error))); else resolve(msg.result);
    }
  });
  const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
    const i = ++id;
    pending.set(i, { resolve, reject });
    ws.send(JSON.stringify({ id: i, method, params, ...(sessionId ? { sessionId } : {}) }));
  });
  return new Promise((resolve, reject) => {
    ws.on('open', () => resolve({ send, ws }));
    ws.on('error', reject);
  });
}

async function main() {
  const { send } = await cdp(await devtoolsEndpoint());
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  const s = (m, p) => send(m, p, sessionId);
  const evaluate = async (expression) => {
    const r = await s('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) throw new Error(`page JS error: ${JSON.stringify(r.exceptionDetails).slice(0, 300)}`);
    return r.result.value;
  };
  await s('Page.enable');
  await s('Page.navigate', { url: `${url}/auctions` });
  out('navigated', { url: '/auctions' });
  // wait for the page's socket to connect and upgrade
  let transport = null;
  for (let i = 0; i < 100 && transport !== 'websocket'; i++) {
    await sleep(100);
    transport = await evaluate("typeof socket !== 'undefined' && socket.connected ? socket.io.engine.transport.name : null")
      .catch(() => null);
  }
  if (transport !== 'websocket') throw new Error(`page socket not connected/upgraded (transport=${transport})`);
  out('connected', { who: 'page', transport });
  // type a bid into the page's form, then press its button
  const bid = { item: 'lamp', bid: 21, bidder: 'chromium' };
  for (const [field, value] of [['item', bid.item], ['bid', String(bid.bid)], ['bidder', bid.bidder]]) {
    await evaluate(`document.getElementById('${field}').focus()`);
    await s('Input.insertText', { text: value });
  }
  await evaluate("document.getElementById('submit').click()");
  out('sent', { who: 'page', event: 'replace old value', args: [bid] });
  let row = null;
  for (let i = 0; i < 50 && !row; i++) {
    await sleep(100);
    row = await evaluate(`(() => { const tr = document.querySelector('tr[data-item="lamp"]');
      return tr ? Array.from(tr.children).map((td) => td.textContent) : null; })()`);
  }
  if (!row || row[1] !== '21' || row[2] !== 'chromium') throw new Error(`page did not show the bid: ${JSON.stringify(row)}`);
  out('recv', { who: 'page', event: 'replaced values', row });
  if (screenshot) {
    const { data } = await s('Page.captureScreenshot', { format: 'png' });
    writeFileSync(screenshot, Buffer.from(data, 'base64'));
    out('screenshot', { file: screenshot });
  }
  // close the page's socket cleanly before the browser goes away
  await evaluate('socket.disconnect(); true');
  await sleep(300);
  out('pass', { scenario: 'page-bid' });
  await send('Browser.close').catch(() => {});
}

main().then(() => finish(0), (e) => finish(1, e.message));
