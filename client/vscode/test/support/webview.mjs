// The webview harness: the credential form's real page (html.ts, form.js,
// form.css) in headless Chromium, with a stand-in for VS Code's
// acquireVsCodeApi that hands each message to a real FormSession, which
// talks to a real broker through @credbroker/client. The page is served
// from 127.0.0.1 under the same Content-Security-Policy as in VS Code.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const puppeteer = require('puppeteer-core');
const { CredbrokerClient } = require('@credbroker/client');

const extDir = join(dirname(fileURLToPath(import.meta.url)), '../..');
const { renderFormPage } = require(join(extDir, 'out/form/html.js'));
const { FormSession } = require(join(extDir, 'out/form/session.js'));

export const chromiumPath = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

export function chromiumArgs() {
  const args = ['--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'];
  // Chromium's sandbox refuses to run as root.
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  return args;
}

export async function launchBrowser() {
  return puppeteer.launch({
    executablePath: chromiumPath,
    headless: true,
    args: chromiumArgs(),
    protocolTimeout: 60_000,
  });
}

export class Harness {
  constructor(broker) {
    this.broker = broker;
    this.files = [];          // What the next pickFile calls return.
    this.closed = false;
    this.changes = [];
    this.cspViolations = [];
    this.consoleErrors = [];
    this.sent = [];           // What the page posted, in memory only (values too).
  }

  async start() {
    this.client = await CredbrokerClient.connect({ address: this.broker.address, tokenFile: this.broker.approverToken });
    const media = join(extDir, 'media');
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (url.pathname === '/form.html') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(this.page_html);
        return;
      }
      const m = /^\/media\/(form\.js|form\.css)$/.exec(url.pathname);
      if (m !== null) {
        res.writeHead(200, { 'content-type': m[1].endsWith('.js') ? 'text/javascript' : 'text/css' });
        res.end(readFileSync(join(media, m[1])));
        return;
      }
      // favicon.ico and anything else: nothing (a 204 logs no error).
      res.writeHead(url.pathname === '/favicon.ico' ? 204 : 404);
      res.end();
    });
    await new Promise((ok) => this.server.listen(0, '127.0.0.1', ok));
    this.origin = `http://127.0.0.1:${this.server.address().port}`;
    this.page_html = renderFormPage({
      cspSource: this.origin,
      scriptUri: `${this.origin}/media/form.js`,
      styleUri: `${this.origin}/media/form.css`,
    });
    this.providerList = (await this.client.listProviders({})).providers;
    return this;
  }

  async stop() {
    this.client?.close();
    await new Promise((ok) => (this.server ? this.server.close(() => ok()) : ok()));
  }

  // Opens the form for `subject` in a new page of `browser`; resolves once
  // the form is rendered. `client` stands in for the harness's client
  // (e.g. a wrapper with its own listPasskeys); `approveWithPasskey` is the
  // host's passkey ceremony (absent: the form offers no passkey).
  async open(browser, subject, { client = this.client, approveWithPasskey } = {}) {
    const page = await browser.newPage();
    this.page = page;
    page.on('console', (m) => {
      const text = m.text();
      if (/Content Security Policy|Refused to/i.test(text)) this.cspViolations.push(text);
      else if (m.type() === 'error') this.consoleErrors.push(text);
    });
    page.on('pageerror', (e) => this.consoleErrors.push(String(e)));
    this.closed = false;
    this.cspViolations = [];
    this.consoleErrors = [];
    this.sent = [];
    const session = new FormSession(client, subject, {
      post: (m) => {
        page.evaluate((msg) => window.dispatchEvent(new MessageEvent('message', { data: msg })), m)
          .catch(() => undefined);
      },
      pickFile: async () => this.files.shift(),
      close: () => { this.closed = true; },
      changed: (outcome, message) => this.changes.push({ outcome, message }),
      ...(approveWithPasskey === undefined ? {} : { approveWithPasskey }),
    }, async () => this.providerList);
    this.session = session;
    await session.load();
    await page.exposeFunction('__credbrokerToHost', (m) => {
      this.sent.push(m);
      return session.handle(m);
    });
    await page.evaluateOnNewDocument(() => {
      let acquired = false;
      window.__securityViolations = [];
      document.addEventListener('securitypolicyviolation', (e) => {
        window.__securityViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
      });
      window.acquireVsCodeApi = () => {
        if (acquired) throw new Error('acquireVsCodeApi called twice');
        acquired = true;
        return {
          postMessage: (m) => { void window.__credbrokerToHost(JSON.parse(JSON.stringify(m))); },
          getState: () => undefined,
          setState: () => { throw new Error('the form must not persist state'); },
        };
      };
    });
    await page.goto(`${this.origin}/form.html`, { waitUntil: 'load', timeout: 30_000 });
    await page.waitForSelector('#credential-form', { timeout: 30_000 });
    return page;
  }
}
