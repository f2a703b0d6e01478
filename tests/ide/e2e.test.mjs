// Level 2: the extension in a real VS Code. code-server (VS Code in a
// browser, from npm) runs on 127.0.0.1 with the extension installed from its
// .vsix; Debian's chromium, driven by puppeteer-core, is the person at the
// screen. credbrokerd is started by the extension's own "Start broker"
// action (a wrapper that points it at a fresh data directory); agents are
// real `credctl request` processes.
//
// Environment: CREDBROKER_BIN, CREDCTL_BIN (the daemon and credctl),
// CREDBROKER_IDE_VSIX (the package to install), CREDBROKER_IDE_NODE24 (the
// Node 24 that runs code-server), CREDBROKER_IDE_PIDS (a file to which
// every process started here is appended, for the caller's trap),
// CREDBROKER_IDE_ARTIFACTS (where the screenshot and figures go).
//
// No secret value is printed: the agent's grant is compared in memory.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { agentRequest, brokerBin, brokerHasFlag, startLockedBroker, within } from '../../client/vscode/test/support/broker.mjs';
import { chromiumArgs, chromiumPath } from '../../client/vscode/test/support/webview.mjs';
import {
  puppeteer,
  node24,
  codeServer,
  vsix,
  artifacts,
  pidsFile,
  EXTENSION_ID,
  PIN,
  STORE_PASSPHRASE,
  AWS_KEY_ID,
  AWS_SECRET,
  figures,
  log,
  rememberPid,
  sleep,
  extensionHostPid,
  rssKiB,
  liveMemory,
  startCodeServer,
  openWorkbench,
  statusText,
  waitStatus,
  waitToast,
  clickToastButton,
  formFrame,
  screenshotForm,
  runCommand,
  typeIn,
} from './e2e_support.mjs';

describe('the extension in code-server', { concurrency: false }, () => {
  let root;
  let dataDir;
  let cs;
  let browser;
  let page;
  const broker = {};
  let brokerPidFile;
  let lockedBroker;

  before(async () => {
    assert.ok(existsSync(node24), `Node 24 for code-server: ${node24}`);
    assert.ok(existsSync(codeServer), 'code-server is installed (npm ci in tests/ide)');
    assert.ok(existsSync(vsix), `the extension's package: ${vsix}`);
    mkdirSync(artifacts, { recursive: true });
    root = mkdtempSync(join(tmpdir(), 'cbide-cs-'));
    dataDir = mkdtempSync(join(tmpdir(), 'cbide-'));
    rmSync(dataDir, { recursive: true });  // credbrokerd creates it 0700.
    for (const d of ['workspace', 'user-data/User', 'config', 'data']) mkdirSync(join(root, d), { recursive: true });

    // "Start broker" runs credbroker.brokerPath: this wrapper notes its pid
    // (the daemon's, after exec) and passes the test's flags.
    brokerPidFile = join(root, 'credbrokerd.pid');
    const wrapper = join(root, 'credbrokerd');
    const flags = brokerHasFlag('key_source') ? ' --key_source=file' : '';
    writeFileSync(wrapper, `#!/bin/sh\necho $$ > '${brokerPidFile}'\n` +
      `${pidsFile ? `echo "$$ credbrokerd" >> '${pidsFile}'\n` : ''}` +
      `exec '${brokerBin}'${flags} "$@"\n`);
    chmodSync(wrapper, 0o755);
    Object.assign(broker, {
      dataDir,
      address: `unix:${join(dataDir, 'broker.sock')}`,
      agentToken: join(dataDir, 'agent.token'),
    });

    writeFileSync(join(root, 'user-data/User/settings.json'), JSON.stringify({
      'credbroker.dataDir': dataDir,
      'credbroker.socketPath': join(dataDir, 'broker.sock'),
      'credbroker.tokenFile': join(dataDir, 'approver.token'),
      'credbroker.brokerPath': wrapper,
      'workbench.startupEditor': 'none',
      'workbench.secondarySideBar.defaultVisibility': 'hidden',
      'workbench.tips.enabled': false,
      'security.workspace.trust.enabled': false,
      'telemetry.telemetryLevel': 'off',
      'extensions.autoCheckUpdates': false,
      'extensions.autoUpdate': false,
      'update.mode': 'none',
      'chat.disableAIFeatures': true,
      'git.enabled': false,
      'terminal.integrated.enablePersistentSessions': false,
    }, null, 2));

    const install = spawnSync(node24, [codeServer, '--extensions-dir', join(root, 'extensions'),
      '--user-data-dir', join(root, 'user-data'), '--install-extension', vsix],
    { encoding: 'utf8', timeout: 120_000, env: { ...process.env, XDG_CONFIG_HOME: join(root, 'config'), XDG_DATA_HOME: join(root, 'data') } });
    assert.equal(install.status, 0, `install the .vsix: ${install.stdout}${install.stderr}`);
    assert.match(install.stdout, /successfully installed/);

    cs = await startCodeServer(root);
    browser = await puppeteer.launch({ executablePath: chromiumPath, headless: true, args: chromiumArgs(),
                                       protocolTimeout: 120_000 });
    rememberPid(browser.process()?.pid, 'chromium');
    const t0 = Date.now();
    page = await openWorkbench(browser, cs.url);
    figures.workbenchOpenMs = Date.now() - t0;
    log(`workbench open after ${figures.workbenchOpenMs} ms`);
  }, { timeout: 300_000 });

  after(async () => {
    if (page !== undefined && figures.failedShot !== true) {
      // For a failure: what the screen showed last.
      await page.screenshot({ path: join(artifacts, 'last-screen.png') }).catch(() => undefined);
    }
    await browser?.close().catch(() => undefined);
    await cs?.stop();
    if (brokerPidFile !== undefined && existsSync(brokerPidFile)) {
      const pid = Number(readFileSync(brokerPidFile, 'utf8').trim());
      try { process.kill(pid, 'SIGTERM'); } catch { /* already gone */ }
      await sleep(500);
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await lockedBroker?.stop();
    writeFileSync(join(artifacts, 'figures.json'), `${JSON.stringify(figures, null, 2)}\n`);
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
    if (dataDir !== undefined) {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(`${dataDir}-spill`, { recursive: true, force: true });
    }
  });

  test('the status bar says the broker is not running; its "Start broker" starts it', { timeout: 180_000 }, async () => {
    await waitStatus(page, 'state', /not running/);
    const tip = await page.$eval(`[id="${EXTENSION_ID}.credbroker.state"]`, (e) => e.getAttribute('aria-label') ?? '');
    assert.match(tip, /not running/);
    await page.click(`[id="${EXTENSION_ID}.credbroker.state"] a, [id="${EXTENSION_ID}.credbroker.state"]`);
    // The daemon runs in a terminal; the extension connects to it.
    await waitStatus(page, 'pending', /0 pending/, 120_000);
    assert.ok(existsSync(brokerPidFile), 'credbrokerd was started by the extension');
    const ext = extensionHostPid(cs.pid);
    assert.ok(ext !== undefined, 'the extension host runs');
    await sleep(5_000);
    figures.extensionHostRssKiBConnected = rssKiB(ext);
    log(`extension host RSS with the extension connected: ${figures.extensionHostRssKiBConnected} KiB`);
    const live = await liveMemory(ext);
    if (live !== undefined) {
      figures.extensionHostLiveConnected = live;
      log(`after a full GC: RSS ${live.rssKiB} KiB, V8 heap ${live.heapUsedKiB} KiB`);
    }
  });

  test('approve: notification, Review, the form, a PIN chosen on first use; the agent gets the grant', { timeout: 240_000 }, async () => {
    const t0 = Date.now();
    const agent = agentRequest(broker, 'aws', 'deploy to AWS in us-east-1', { context: ['region=us-east-1'] });
    rememberPid(agent.pid, 'credctl');
    // credctl prints the request id once the broker has queued the need:
    // from then on the time is the watch stream's, the extension's and
    // VS Code's; before it, credctl's start and its call.
    const queuedAt = agent.requestId().then(() => Date.now(), () => undefined);
    try {
      const toast = await waitToast(page, /asks for aws\/default credentials to "deploy to AWS in us-east-1"/);
      const shownAt = Date.now();
      figures.notificationLatencyMs = shownAt - t0;
      log(`notification ${figures.notificationLatencyMs} ms after the agent's request`);
      const queued = await queuedAt;
      if (queued !== undefined) {
        figures.notificationAfterQueuedMs = shownAt - queued;
        log(`of which ${queued - t0} ms until credctl said the broker queued it, ` +
            `${figures.notificationAfterQueuedMs} ms from there to the notification`);
      }
      const message = await toast.$eval('.notification-list-item-message', (e) => e.textContent ?? '');
      assert.match(message, new RegExp(`credctl, pid ${agent.pid}\\b`), 'names the agent\'s process');
      assert.match(message, /region=us-east-1/, 'and the scope asked');
      await waitStatus(page, 'pending', /1 pending/, 30_000);

      await clickToastButton(toast, 'Review');
      const frame = await formFrame(page);
      assert.match(await frame.$eval('#request-peer', (e) => e.textContent), new RegExp(`pid ${agent.pid}\\b`));
      assert.equal(await frame.$eval('#request-action', (e) => e.textContent), 'deploy to AWS in us-east-1');
      assert.ok(await frame.$('#new-pin-repeat'), 'no PIN set yet: the form asks for one, twice');
      await typeIn(page, frame, 'f-access_key_id', AWS_KEY_ID);
      await typeIn(page, frame, 'f-secret_access_key', AWS_SECRET);
      await frame.waitForFunction(() => !document.getElementById('app')?.hasAttribute('data-validating'), { timeout: 30_000 });
      await screenshotForm(page, frame, join(artifacts, 'ide-form.png'));
      await typeIn(page, frame, 'new-pin', PIN);
      await typeIn(page, frame, 'new-pin-repeat', PIN);
      await frame.waitForFunction(() => !document.getElementById('app')?.hasAttribute('data-validating'), { timeout: 30_000 });
      assert.equal(await frame.$eval('#msg-access_key_id', (e) => e.textContent), '');
      await frame.click('#approve');
      const r = await within(60_000, agent.result, 'the agent\'s grant');
      assert.equal(r.code, 0, `credctl request: ${r.stderr}`);
      assert.equal(r.grant.provider, 'aws');
      assert.equal(r.grant.values.access_key_id, AWS_KEY_ID);
      assert.ok(r.grant.values.secret_access_key === AWS_SECRET, 'the agent received the secret typed in the form');
      await waitStatus(page, 'pending', /0 pending/, 30_000);

      // The Credentials view lists the profile, ready.
      await page.click('.activitybar [aria-label^="credbroker"]');
      await page.waitForFunction(() => [...document.querySelectorAll('.monaco-list-row')]
        .some((row) => /default/.test(row.textContent ?? '') && /ready/.test(row.textContent ?? '')),
      { timeout: 30_000, polling: 250 });
    } finally {
      agent.kill();
    }
  });

  test('doctor, from the Command Palette: every stored credential validated', { timeout: 120_000 }, async () => {
    await runCommand(page, 'credbroker: Doctor');
    await waitToast(page, /credbroker doctor: 1 ready, 0 need attention/, 60_000);
    // The report in the "credbroker" output channel (Monaco renders its
    // spaces as no-break spaces, which \s matches).
    await page.waitForFunction(() => [...document.querySelectorAll('.part.panel .view-lines')]
      .some((v) => /aws\/default:\s+ready/.test(v.textContent ?? '')), { timeout: 30_000, polling: 250 });
  });

  test('deny from the notification with a reason: the agent sees DENIED and the reason', { timeout: 180_000 }, async () => {
    const agent = agentRequest(broker, 'digitalocean', 'deploy to DigitalOcean');
    rememberPid(agent.pid, 'credctl');
    try {
      const toast = await waitToast(page, /asks for digitalocean\/default credentials/);
      await clickToastButton(toast, 'Deny');
      await page.waitForSelector('.quick-input-widget input', { visible: true, timeout: 30_000 });
      await page.keyboard.type('wrong account for this project');
      await page.keyboard.press('Enter');
      const r = await within(60_000, agent.result, 'the agent\'s answer');
      assert.equal(r.code, 3, 'credctl exits 3 when denied');
      assert.match(r.stderr, /was denied: wrong account for this project/);
    } finally {
      agent.kill();
    }
  });

  test('a malformed key is an inline field error in the form', { timeout: 180_000 }, async () => {
    const agent = agentRequest(broker, 'aws', 'deploy the staging stack', { profile: 'staging' });
    rememberPid(agent.pid, 'credctl');
    try {
      const toast = await waitToast(page, /asks for aws\/staging credentials/);
      await clickToastButton(toast, 'Review');
      const frame = await formFrame(page);
      await typeIn(page, frame, 'f-access_key_id', 'AKIA123');
      await frame.waitForFunction(() => /7 characters/.test(document.getElementById('msg-access_key_id')?.textContent ?? ''),
        { timeout: 30_000 });
      assert.equal(await frame.$eval('#f-access_key_id', (e) => e.getAttribute('aria-invalid')), 'true');
      await typeIn(page, frame, 'deny-reason', 'typo in the key');
      await frame.click('#deny');
      const r = await within(60_000, agent.result, 'the agent\'s answer');
      assert.equal(r.code, 3);
      const ext = extensionHostPid(cs.pid);
      if (ext !== undefined) figures.extensionHostRssKiBAfterCases = rssKiB(ext);
    } finally {
      agent.kill();
    }
  });

  test('a locked broker: the passphrase is asked, a wrong one refused, the right one connects', { timeout: 240_000 }, async () => {
    // The broker the extension started goes, with its store; in the same
    // data directory (the extension's settings unchanged) a passphrase
    // store's broker, started without its passphrase and without a
    // terminal, comes.
    if (existsSync(brokerPidFile)) {
      const pid = Number(readFileSync(brokerPidFile, 'utf8').trim());
      try { process.kill(pid, 'SIGTERM'); } catch { /* already gone */ }
      for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await sleep(100);
    }
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(`${dataDir}-spill`, { recursive: true, force: true });
    lockedBroker = await startLockedBroker(STORE_PASSPHRASE, { dataDir });
    rememberPid(lockedBroker.pid, 'credbrokerd (locked)');

    await waitStatus(page, 'state', /locked/, 60_000).catch(async (e) => {
      await page.screenshot({ path: join(artifacts, 'locked-screen.png') }).catch(() => undefined);
      throw new Error(`the status bar says "${await statusText(page, 'state')}", not locked: ${e.message}`);
    });
    const input = '.quick-input-widget input[type="password"]';
    await page.waitForSelector(input, { visible: true, timeout: 30_000 });
    const widget = () => page.$eval('.quick-input-widget', (e) => e.textContent ?? '');
    assert.match(await widget(), /passphrase/, 'the input box says what it asks for');

    await page.click(input);
    await page.keyboard.type('not the passphrase');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /does not open the store/.test(
      document.querySelector('.quick-input-widget')?.textContent ?? ''), { timeout: 60_000, polling: 250 });
    await waitStatus(page, 'state', /locked/, 5_000);
    await page.waitForSelector(input, { visible: true, timeout: 10_000 });
    await page.click(input);
    await page.keyboard.type(STORE_PASSPHRASE);
    const t0 = Date.now();
    await page.keyboard.press('Enter');
    await waitStatus(page, 'pending', /0 pending/, 60_000);
    figures.unlockToConnectedMs = Date.now() - t0;
    log(`connected ${figures.unlockToConnectedMs} ms after the passphrase was entered`);
    assert.match(lockedBroker.stdout(), /^credbrokerd: unlocked$/m);

    const agent = agentRequest({ address: lockedBroker.address, agentToken: lockedBroker.agentToken },
      'aws', 'deploy after the unlock');
    rememberPid(agent.pid, 'credctl');
    try {
      await waitToast(page, /asks for aws\/default credentials to "deploy after the unlock"/, 60_000);
    } finally {
      agent.kill();
    }
    // The passphrase is nowhere: not on the screen, not in VS Code's logs.
    const screen = await page.evaluate(() => document.body.innerText);
    assert.ok(!screen.includes(STORE_PASSPHRASE), 'the passphrase is not on the screen');
    assert.ok(!cs.log().includes(STORE_PASSPHRASE), 'nor in code-server\'s output');
    const logs = spawnSync('grep', ['-rlF', '--', STORE_PASSPHRASE, join(root, 'user-data')], { encoding: 'utf8' });
    assert.equal(logs.stdout, '', 'nor in any file of VS Code\'s user data (logs, state)');
  });

  test('memory: the extension host without the extension, for comparison', { timeout: 240_000 }, async () => {
    await browser.close();
    await cs.stop();
    // The same VS Code with an empty extensions directory: built-ins only,
    // and a fresh profile as the first run had when it was measured (a
    // profile reused from the runs above starts lighter, which made the
    // difference look larger than the extension).
    mkdirSync(join(root, 'no-extensions'), { recursive: true });
    const base = await startCodeServer(root, { extraArgs: ['--extensions-dir', join(root, 'no-extensions')],
                                               userData: 'user-data-baseline' });
    try {
      browser = await puppeteer.launch({ executablePath: chromiumPath, headless: true, args: chromiumArgs(),
                                         protocolTimeout: 120_000 });
      rememberPid(browser.process()?.pid, 'chromium');
      page = await openWorkbench(browser, base.url);
      await page.waitForSelector('.statusbar', { timeout: 60_000 });
      let ext;
      for (let i = 0; i < 120 && ext === undefined; i++) {
        ext = extensionHostPid(base.pid);
        if (ext === undefined) await sleep(500);
      }
      assert.ok(ext !== undefined, 'the extension host runs');
      await sleep(10_000);
      assert.equal(await statusText(page, 'state'), '', 'the extension is off in this run');
      figures.extensionHostRssKiBWithout = rssKiB(ext);
      figures.extensionAddsKiB = figures.extensionHostRssKiBConnected - figures.extensionHostRssKiBWithout;
      log(`extension host RSS without the extension: ${figures.extensionHostRssKiBWithout} KiB; ` +
          `the extension adds about ${figures.extensionAddsKiB} KiB`);
      const live = await liveMemory(ext);
      const withIt = figures.extensionHostLiveConnected;
      if (live !== undefined && withIt !== undefined) {
        figures.extensionHostLiveWithout = live;
        figures.extensionAddsKiBAfterGc = withIt.rssKiB - live.rssKiB;
        figures.extensionAddsHeapKiB = withIt.heapUsedKiB - live.heapUsedKiB;
        log(`after a full GC: RSS ${live.rssKiB} KiB, V8 heap ${live.heapUsedKiB} KiB without the extension; ` +
            `the extension adds ${figures.extensionAddsKiBAfterGc} KiB of RSS, ${figures.extensionAddsHeapKiB} KiB of heap`);
      }
    } finally {
      await base.stop();
    }
  });
});
