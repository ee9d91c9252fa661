// The auction page and the live trace view of `dispel serve`, in headless Chromium:
// two tabs of /auctions, a bid typed into one (with HTML in it), both tables update, the text
// stays text, and the /trace tab shows the dispatch and the broadcast as they happen.
//
//   node tests/browser/dispel_page.mjs http://127.0.0.1:PORT [--screenshot DIR]
//
// Prints one JSON line per step; exits non-zero with a message on failure.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from './cdp.mjs';

const url = process.argv[2];
const shotDir = process.argv[3] === '--screenshot' ? process.argv[4] : null;
if (!url) { console.error('usage: node dispel_page.mjs URL [--screenshot DIR]'); process.exit(2); }
const out = (kind, f = {}) => process.stdout.write(JSON.stringify({ client: 'chromium', kind, ...f }) + '\n');
const timer = setTimeout(() => { console.error('dispel_page: hard timeout'); process.exit(3); }, 60000);

const browser = await launch();
try {
  const trace = await browser.page(`${url}/trace`);
  await trace.waitFor("document.getElementById('status').dataset.state === 'live'", 'the live view to connect');
  const a = await browser.page(`${url}/auctions`);
  const b = await browser.page(`${url}/auctions`);
  for (const [name, p] of [['a', a], ['b', b]]) {
    await p.waitFor("document.getElementById('status').textContent === 'connected'", `tab ${name} to connect`);
  }
  out('connected', { tabs: 2 });
  const hostile = '<img src=x onerror="document.title=\'pwned\'">';
  for (const [field, value] of [['item', 'vase'], ['amount', '42'], ['bidder', hostile]]) {
    await a.evaluate(`(() => { const e = document.getElementById('${field}'); e.value = ''; e.focus(); return true; })()`);
    await a.type(value);
  }
  await a.evaluate("document.querySelector('#bid button').click(); true");
  out('bid', { tab: 'a' });
  const rowOf = `(() => { const r = [...document.querySelectorAll('#values tr')].find((tr) => tr.cells[0].textContent === 'vase');
    return r ? [r.cells[1].textContent, r.cells[2].textContent, r.querySelectorAll('img').length, document.title] : null; })()`;
  for (const [name, p] of [['a', a], ['b', b]]) {
    const row = await p.waitFor(rowOf, `tab ${name} to show the bid`);
    if (row[0] !== '42' || row[1] !== hostile) throw new Error(`tab ${name} shows ${JSON.stringify(row)}`);
    if (row[2] !== 0 || row[3] === 'pwned') throw new Error(`tab ${name}: the bid's HTML became markup`);
    out('row', { tab: name, bid: row[0], bidder_is_text: true });
  }
  const seen = await trace.waitFor(`(() => { const s = [...document.querySelectorAll('.ev')].map((e) => e.dataset.stage);
    return s.includes('sio.dispatch') && s.includes('sio.broadcast') && s.includes('ws.frame') ? s.length : 0; })()`, 'the live view to show the dispatch and broadcast');
  out('trace', { rows: seen });
  // The browser offered permessage-deflate and the server accepted it, as Flask-SocketIO
  // (wsproto) does: the live view shows the agreement and the compressed messages inflated.
  const deflate = await trace.waitFor(`(() => { const t = [...document.querySelectorAll('.ev')].map((e) => e.textContent);
    const agreed = t.some((x) => x.includes('permessage-deflate accepted'));
    const inflated = t.filter((x) => x.includes('inflated from')).length;
    return agreed && inflated > 0 ? inflated : 0; })()`, 'the live view to show permessage-deflate');
  out('deflate', { inflated_messages: deflate });
  // The lanes: an arrow per message, the broadcast fanned out; clicking one opens its event,
  // with its bytes.
  const lanes = await trace.waitFor(`(() => { const a = document.querySelectorAll('#lanes .arrow');
    const fan = [...a].filter((g) => g.querySelector('line').getAttribute('stroke-dasharray') === '5 3').length;
    return a.length >= 4 && fan >= 2 ? { arrows: a.length, fan } : null; })()`, 'the lanes to draw the bid and its broadcast');
  out('lanes', lanes);
  const opened = await trace.evaluate(`(() => {
    const g = [...document.querySelectorAll('#lanes .arrow')].find((g) => g.textContent.includes('sio.packet'));
    if (!g) return null; g.dispatchEvent(new MouseEvent('click', { bubbles: true }));
    const r = document.querySelector('.ev.open'); return r ? { stage: r.dataset.stage, detail: r.querySelector('.detail').textContent.length } : null; })()`);
  if (!opened || opened.stage !== 'sio.packet' || opened.detail < 20) throw new Error(`clicking an arrow opened ${JSON.stringify(opened)}`);
  out('clicked', opened);
  // Pause holds new events back, resume shows them.
  const rows = await trace.evaluate("document.querySelectorAll('.ev').length");
  await trace.evaluate("document.getElementById('pause').click(); true");
  await a.evaluate("document.querySelector('#bid button').click(); true");
  await trace.waitFor("document.getElementById('status').textContent.startsWith('paused (') && !document.getElementById('status').textContent.startsWith('paused (0')", 'events to wait while paused');
  const held = await trace.evaluate("document.querySelectorAll('.ev').length");
  if (held !== rows) throw new Error(`rows grew while paused: ${rows} -> ${held}`);
  await trace.evaluate("document.getElementById('pause').click(); true");
  const after = await trace.evaluate("document.querySelectorAll('.ev').length");
  if (after <= rows) throw new Error('resume showed nothing');
  out('paused', { held: after - rows });
  if (shotDir) {
    await trace.evaluate("document.querySelectorAll('.ev.open').forEach((r) => r.classList.remove('open')); window.scrollTo(0, 0); true");
    writeFileSync(join(shotDir, 'auctions.png'), await b.screenshot());
    writeFileSync(join(shotDir, 'trace.png'), await trace.screenshot());
  }
  out('pass', { scenario: 'page-and-live-view' });
} catch (e) {
  out('fail', { error: e.message });
  console.error(`dispel_page: FAIL: ${e.message}`);
  process.exitCode = 1;
} finally {
  clearTimeout(timer);
  await browser.close();
}
