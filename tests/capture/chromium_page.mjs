#!/usr/bin/env node
// Drive the Flask-SocketIO reference app's /auctions page in headless Debian chromium, typing a
// bid into the page's own form so the page's own JS (socket.io-client) emits it.
//
//   node chromium_page.mjs URL [--screenshot FILE.png] [--timeout S]
//
// Prints JSON lines like the other clients ("client": "chromium"); exits non-zero with a
// message on failure. Chromium handling lives in ../browser/cdp.mjs.
import { writeFileSync } from 'node:fs';
import { launch, sleep } from '../browser/cdp.mjs';

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
const timer = setTimeout(() => { out('fail', { error: `hard timeout ${timeoutS}s` }); process.exit(3); }, timeoutS * 1000);

const browser = await launch();
try {
  const page = await browser.page(`${url}/auctions`);
  out('navigated', { url: '/auctions' });
  // wait for the page's socket to connect and upgrade
  const transport = await page.waitFor(
    "typeof socket !== 'undefined' && socket.connected && socket.io.engine.transport.name === 'websocket' ? 'websocket' : null",
    'the page socket to connect and upgrade');
  out('connected', { who: 'page', transport });
  const bid = { item: 'lamp', bid: 21, bidder: 'chromium' };
  for (const [field, value] of [['item', bid.item], ['bid', String(bid.bid)], ['bidder', bid.bidder]]) {
    await page.evaluate(`document.getElementById('${field}').focus()`);
    await page.type(value);
  }
  await page.evaluate("document.getElementById('submit').click()");
  out('sent', { who: 'page', event: 'replace old value', args: [bid] });
  const row = await page.waitFor(`(() => { const tr = document.querySelector('tr[data-item="lamp"]');
    return tr ? Array.from(tr.children).map((td) => td.textContent) : null; })()`, 'the bid in the table', 5000);
  if (row[1] !== '21' || row[2] !== 'chromium') throw new Error(`page did not show the bid: ${JSON.stringify(row)}`);
  out('recv', { who: 'page', event: 'replaced values', row });
  if (screenshot) {
    writeFileSync(screenshot, await page.screenshot());
    out('screenshot', { file: screenshot });
  }
  // close the page's socket cleanly before the browser goes away
  await page.evaluate('socket.disconnect(); true');
  await sleep(300);
  out('pass', { scenario: 'page-bid' });
} catch (e) {
  out('fail', { error: e.message });
  console.error(`chromium_page: FAIL: ${e.message}`);
  process.exitCode = 1;
} finally {
  clearTimeout(timer);
  await browser.close();
}
