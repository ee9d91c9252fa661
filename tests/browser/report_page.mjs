// A report written by `dispel report --format html`, opened from its file in headless Chromium
// with the network off: the page draws its sequence diagram (inline SVG) and its annotated
// bytes without loading anything, and the diagram has the arrows the trace has messages.
//
//   node tests/browser/report_page.mjs FILE.html [--screenshot DIR]
//
// Prints one JSON line per step; exits non-zero with a message on failure.
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { launch } from './cdp.mjs';

const file = process.argv[2];
const shotDir = process.argv[3] === '--screenshot' ? process.argv[4] : null;
if (!file) { console.error('usage: node report_page.mjs FILE.html [--screenshot DIR]'); process.exit(2); }
const out = (kind, f = {}) => process.stdout.write(JSON.stringify({ client: 'chromium', kind, ...f }) + '\n');
const timer = setTimeout(() => { console.error('report_page: hard timeout'); process.exit(3); }, 60000);

const browser = await launch();
try {
  const page = await browser.page(pathToFileURL(resolve(file)).href);
  await page.waitFor("document.readyState === 'complete'", 'the page to load');
  // Nothing but the page itself was fetched: no script, no style sheet, no image, no font.
  const loaded = await page.evaluate("performance.getEntriesByType('resource').map((r) => r.name)");
  if (loaded.length) throw new Error(`the page loaded ${JSON.stringify(loaded)}`);
  const diagram = await page.evaluate(`(() => { const svg = document.querySelector('figure.sequence svg');
    if (!svg) return null; const box = svg.getBoundingClientRect();
    return { arrows: svg.querySelectorAll('[marker-end]').length, lanes: svg.querySelectorAll('rect').length,
      width: Math.round(box.width), height: Math.round(box.height) }; })()`);
  if (!diagram || diagram.width < 200 || diagram.height < 100) throw new Error(`no diagram drawn: ${JSON.stringify(diagram)}`);
  out('diagram', diagram);
  const bytes = await page.evaluate(`[...document.querySelectorAll('figure.bytes')].map((f) => {
    const boxes = [...f.querySelectorAll('.strip .f')];
    return { caption: f.querySelector('figcaption').textContent,
      fields: boxes.map((b) => b.querySelector('small').textContent),
      visible: boxes.every((b) => b.getBoundingClientRect().width > 10),
      coloured: new Set(boxes.map((b) => getComputedStyle(b).backgroundColor)).size };
  })`);
  if (!bytes.length) throw new Error('no annotated bytes');
  for (const b of bytes) {
    if (!b.visible || b.coloured < Math.min(b.fields.length, 2)) throw new Error(`bytes not drawn: ${JSON.stringify(b)}`);
  }
  out('bytes', { figures: bytes.length, fields: bytes.map((b) => b.fields) });
  if (shotDir) {
    await page.evaluate("document.querySelector('figure.sequence').scrollIntoView(); true");
    writeFileSync(join(shotDir, 'report-glance.png'), await page.screenshot());
    await page.evaluate("document.querySelector('figure.bytes').scrollIntoView(); true");
    writeFileSync(join(shotDir, 'report-bytes.png'), await page.screenshot());
  }
  out('pass', { scenario: 'report-page' });
} catch (e) {
  out('fail', { error: e.message });
  console.error(`report_page: FAIL: ${e.message}`);
  process.exitCode = 1;
} finally {
  clearTimeout(timer);
  await browser.close();
}
