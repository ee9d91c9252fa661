// A student's own app (tests/student_app/chat.py) in headless Chromium under `dispel watch`:
// two tabs of its page join room1 through socket.io-client, tab a says something, both tabs
// show it, and the live view shows the student's own handler and the room emit it made, with
// the line of chat.py and who it reached.
//
//   node tests/browser/chat_page.mjs http://127.0.0.1:PORT [--screenshot DIR]
//
// Prints one JSON line per step; exits non-zero with a message on failure.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from './cdp.mjs';

const url = process.argv[2];
const shotDir = process.argv[3] === '--screenshot' ? process.argv[4] : null;
if (!url) { console.error('usage: node chat_page.mjs URL [--screenshot DIR]'); process.exit(2); }
const out = (kind, f = {}) => process.stdout.write(JSON.stringify({ client: 'chromium', kind, ...f }) + '\n');
const timer = setTimeout(() => { console.error('chat_page: hard timeout'); process.exit(3); }, 60000);

const browser = await launch();
try {
  const trace = await browser.page(`${url}/trace`);
  await trace.waitFor("document.getElementById('status').dataset.state === 'live'", 'the live view to connect');
  const a = await browser.page(`${url}/`);
  const b = await browser.page(`${url}/`);
  for (const [name, p] of [['a', a], ['b', b]]) {
    await p.waitFor("document.getElementById('status').textContent === 'in room1'", `tab ${name} to join room1`);
  }
  out('joined', { tabs: 2 });
  await a.evaluate("document.getElementById('text').focus()");
  await a.type('hello room');
  // The typed text is in the field before the click sends it.
  await a.waitFor("document.getElementById('text').value === 'hello room'", 'the text in tab a');
  await a.evaluate("document.getElementById('send').click(); true");
  for (const [name, p] of [['a', a], ['b', b]]) {
    const line = await p.waitFor(`(() => { const l = [...document.querySelectorAll('#log li')].map((li) => li.textContent);
      return l.find((x) => x.endsWith(': hello room')) || null; })()`, `tab ${name} to show the message`);
    out('said', { tab: name, line });
  }
  await a.waitFor("[...document.querySelectorAll('#log li')].some((li) => li.textContent === '(delivered)')", 'the acknowledgement in tab a');
  const seen = await trace.waitFor(`(() => { const evs = [...document.querySelectorAll('.ev')];
    const has = (stage, text) => evs.some((e) => e.dataset.stage === stage && e.textContent.includes(text));
    return has('sio.dispatch', '-> on_say (chat.py:') && has('sio.emit', 'emit "said" to "room1"') && has('sio.emit', '-> 2 clients')
      && has('sio.room', 'join room "room1"') ? evs.length : 0; })()`, "the live view to show on_say and its room emit");
  out('trace', { rows: seen });
  if (shotDir) {
    writeFileSync(join(shotDir, 'chat.png'), await b.screenshot());
    writeFileSync(join(shotDir, 'chat-trace.png'), await trace.screenshot());
  }
  for (const p of [a, b]) await p.evaluate('socket.disconnect(); true');
  out('pass', { scenario: 'student-app-in-chromium' });
} catch (e) {
  out('fail', { error: e.message });
  console.error(`chat_page: FAIL: ${e.message}`);
  process.exitCode = 1;
} finally {
  clearTimeout(timer);
  await browser.close();
}
