// Headless Debian Chromium driven over the DevTools protocol, with nothing but the pinned `ws`
// package: launch, open pages, evaluate JavaScript in them, type, take screenshots.
//
// Chromium comes from `tests/setup.sh --with-chromium` (/usr/bin/chromium; CHROMIUM=path
// overrides). The flags keep it off the network: this machine has none but localhost.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function launch() {
  const bin = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(bin)) throw new Error(`${bin} not found (tests/setup.sh --with-chromium)`);
  const profile = mkdtempSync(join(tmpdir(), 'dispel-chromium-'));
  const chrome = spawn(bin, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-default-apps', '--disable-extensions', '--mute-audio',
    `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  chrome.stderr.on('data', (d) => { stderr += d; });
  const file = join(profile, 'DevToolsActivePort');
  let endpoint = null;
  for (let i = 0; i < 200 && !endpoint; i++) {
    if (existsSync(file)) {
      const [port, path] = readFileSync(file, 'utf8').split('\n');
      if (port && path) endpoint = `ws://127.0.0.1:${port}${path}`;
    }
    if (!endpoint) await sleep(50);
  }
  if (!endpoint) {
    chrome.kill('SIGKILL');
    throw new Error(`chromium did not start: ${stderr.slice(-500)}`);
  }
  const ws = new WebSocket(endpoint, { perMessageDeflate: false });
  await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
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

  async function page(url) {
    const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
    const s = (m, p) => send(m, p, sessionId);
    await s('Page.enable');
    await s('Page.navigate', { url });
    const evaluate = async (expression) => {
      const r = await s('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
      if (r.exceptionDetails) throw new Error(`page JS error: ${JSON.stringify(r.exceptionDetails).slice(0, 300)}`);
      return r.result.value;
    };
    const type = (text) => s('Input.insertText', { text });
    // 20 s: a loaded two-core machine running the other tests beside Chromium is slow.
    const waitFor = async (expression, what, ms = 20000) => {
      for (let waited = 0; waited < ms; waited += 100) {
        const v = await evaluate(expression).catch(() => null);
        if (v) return v;
        await sleep(100);
      }
      throw new Error(`timed out waiting for ${what}`);
    };
    // A projector-sized view (1280x800) unless told otherwise.
    const screenshot = async (width = 1280, height = 800) => {
      await s('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false });
      return Buffer.from((await s('Page.captureScreenshot', { format: 'png' })).data, 'base64');
    };
    return { evaluate, type, waitFor, screenshot, close: () => send('Target.closeTarget', { targetId }) };
  }

  async function close() {
    const exited = new Promise((resolve) => {
      if (chrome.exitCode !== null || chrome.signalCode !== null) resolve();
      else chrome.once('exit', resolve);
    });
    await send('Browser.close').catch(() => {});
    ws.close();
    // Chromium writes to its profile until it has exited: wait for that before removing it.
    const gone = await Promise.race([exited.then(() => true), sleep(3000).then(() => false)]);
    if (!gone) {
      chrome.kill('SIGKILL');
      await Promise.race([exited, sleep(2000)]);
    }
    try {
      rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    } catch (e) {
      console.error(`cdp: could not remove the temporary profile ${profile}: ${e.message}`);
    }
  }
  return { page, close };
}
