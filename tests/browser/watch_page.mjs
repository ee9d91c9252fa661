// The instructor's case for `dispel watch`: the real Flask-SocketIO app (tests/flask_app) open
// in two tabs of headless Chromium, watched, and dispel's live view in a third. A bid typed into
// tab a reaches both tabs through the real server, and the live view shows it as it happens:
// the app's own handler called, the broadcast, the frames, the deflate the browser agreed.
//
//   node tests/browser/watch_page.mjs http://127.0.0.1:PORT [--screenshot DIR]
//
// Prints one JSON line per step; exits non-zero with a message on failure.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from './cdp.mjs';

const url = process.argv[2];
const shotDir = process.argv[3] === '--screenshot' ? process.argv[4] : null;
if (!url) { console.error('usage: node watch_page.mjs URL [--screenshot DIR]'); process.exit(2); }
const out = (kind, f = {}) => process.stdout.write(JSON.stringify({ client: 'chromium', kind, ...f }) + '\n');
const timer = setTimeout(() => { console.error('watch_page: hard timeout'); process.exit(3); }, 60000);

const browser = await launch();
try {
  const trace = await browser.page(`${url}/trace`);
  await trace.waitFor("document.getElementById('status').dataset.state === 'live'", 'the live view to connect');
  const a = await browser.page(`${url}/auctions`);
  const b = await browser.page(`${url}/auctions`);
  for (const [name, p] of [['a', a], ['b', b]]) {
    await p.waitFor("typeof socket !== 'undefined' && socket.connected && socket.io.engine.transport.name === 'websocket'",
      `tab ${name} to connect and upgrade`);
  }
  out('connected', { tabs: 2 });
  for (const [field, value] of [['item', 'lamp'], ['bid', '21'], ['bidder', 'tab a']]) {
    await a.evaluate(`document.getElementById('${field}').focus()`);
    await a.type(value);
  }
  await a.evaluate("document.getElementById('submit').click(); true");
  out('bid', { tab: 'a' });
  const rowOf = `(() => { const tr = document.querySelector('tr[data-item="lamp"]');
    return tr ? Array.from(tr.children).map((td) => td.textContent) : null; })()`;
  for (const [name, p] of [['a', a], ['b', b]]) {
    const row = await p.waitFor(rowOf, `tab ${name} to show the bid`);
    if (row[1] !== '21' || row[2] !== 'tab a') throw new Error(`tab ${name} shows ${JSON.stringify(row)}`);
    out('row', { tab: name, row });
  }
  // The live view: the app's handler and its emit to everyone, both observed inside the app.
  const seen = await trace.waitFor(`(() => { const evs = [...document.querySelectorAll('.ev')];
    const s = evs.map((e) => e.dataset.stage);
    const handler = evs.some((e) => e.dataset.stage === 'sio.dispatch' && e.textContent.includes('handle_new_value'));
    const emit = evs.some((e) => e.dataset.stage === 'sio.emit' && e.textContent.includes('replaced values'));
    return handler && emit && s.includes('ws.frame') && s.includes('tcp.accept') ? s.length : 0; })()`,
  'the live view to show the handler and the broadcast');
  out('trace', { rows: seen });
  const deflate = await trace.waitFor(`(() => { const t = [...document.querySelectorAll('.ev')].map((e) => e.textContent);
    const agreed = t.some((x) => x.includes('permessage-deflate accepted'));
    const inflated = t.filter((x) => x.includes('inflated from')).length;
    return agreed && inflated > 0 ? inflated : 0; })()`, 'the live view to show permessage-deflate');
  out('deflate', { inflated_messages: deflate });
  if (shotDir) {
    writeFileSync(join(shotDir, 'watched-auctions.png'), await b.screenshot());
    writeFileSync(join(shotDir, 'watched-trace.png'), await trace.screenshot());
  }
  for (const p of [a, b]) await p.evaluate('socket.disconnect(); true');
  out('pass', { scenario: 'watched-page-and-live-view' });
} catch (e) {
  out('fail', { error: e.message });
  console.error(`watch_page: FAIL: ${e.message}`);
  process.exitCode = 1;
} finally {
  clearTimeout(timer);
  await browser.close();
}
