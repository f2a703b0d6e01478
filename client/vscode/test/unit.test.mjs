// The extension's VS Code-free pieces: settings, notification text, the
// form page's Content-Security-Policy, and the link to a locked broker.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { startLockedBroker, within } from './support/broker.mjs';

const require = createRequire(import.meta.url);
const { resolveSettings, findBroker } = require('../out/config.js');
const { notificationText, plain } = require('../out/text.js');
const { renderFormPage, contentSecurityPolicy } = require('../out/form/html.js');
const { isJsonKeyField, pinViewOf } = require('../out/form/session.js');

const none = { address: '', socketPath: '', tokenFile: '', dataDir: '', tlsCaFile: '', brokerPath: '' };

test('settings default to the broker\'s data directory', () => {
  const r = resolveSettings(none, { HOME: '/home/u' });
  assert.equal(r.address, 'unix:/home/u/.local/share/credbroker/broker.sock');
  assert.equal(r.tokenFile, '/home/u/.local/share/credbroker/approver.token');
  const e = resolveSettings(none, { HOME: '/home/u', CREDBROKER_DATA_DIR: '/srv/cb' });
  assert.equal(e.address, 'unix:/srv/cb/broker.sock');
  assert.equal(e.tokenFile, '/srv/cb/approver.token');
});

test('a socket path, an address and a token file override the defaults', () => {
  const s = resolveSettings({ ...none, socketPath: '~/b.sock', tokenFile: '~/t' }, { HOME: '/h' });
  assert.equal(s.address, 'unix:/h/b.sock');
  assert.equal(s.tokenFile, '/h/t');
  const a = resolveSettings({ ...none, address: '127.0.0.1:7443', socketPath: '/ignored' }, { HOME: '/h' });
  assert.equal(a.address, '127.0.0.1:7443');
  assert.equal(a.options.address, '127.0.0.1:7443');
});

test('Start broker finds credbrokerd on PATH or at the configured path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cbide-path-'));
  try {
    const bin = join(dir, 'credbrokerd');
    writeFileSync(bin, '#!/bin/sh\n');
    chmodSync(bin, 0o755);
    assert.equal(await findBroker('credbrokerd', { PATH: `/nonexistent:${dir}` }), bin);
    assert.equal(await findBroker('credbrokerd', { PATH: '/nonexistent' }), undefined);
    assert.equal(await findBroker(bin, { PATH: '' }), bin);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the notification names the agent, the credential, the action and the scope asked', () => {
  const r = {
    requestId: 'r-1', agentPeer: 'node, pid 4242, /usr/bin/node', missingFields: [], bindingNote: '',
    need: { provider: 'aws', profile: '', action: 'deploy to AWS', context: { region: 'us-east-1' },
            requestedTtl: { seconds: 3600, nanos: 0 } },
  };
  assert.equal(notificationText(r),
    'credbroker: node, pid 4242, /usr/bin/node asks for aws/default credentials to "deploy to AWS" for 1h on region=us-east-1.');
});

test('broker text cannot make a link in a notification', () => {
  assert.equal(plain('[Review](command:credbroker.doctor)'), '[Review] (command:credbroker.doctor)');
});

test('the form page: a nonce, no inline code, nothing remote', () => {
  const html = renderFormPage({ cspSource: 'vscode-webview://abc', scriptUri: 'vscode-webview://abc/form.js',
                                styleUri: 'vscode-webview://abc/form.css', nonce: 'N0nce' });
  assert.match(html, /<script nonce="N0nce" src="vscode-webview:\/\/abc\/form.js"><\/script>/);
  assert.doesNotMatch(html, /<script(?![^>]*nonce)/);
  assert.doesNotMatch(html, /https?:/);
  const csp = contentSecurityPolicy('vscode-webview://abc', 'N0nce');
  assert.match(csp, /^default-src 'none';/);
  assert.match(csp, /script-src 'nonce-N0nce'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
});

test('the JSON key file picker goes to multiline fields that take a JSON key file', () => {
  assert.equal(isJsonKeyField({ multiline: true, label: 'Service Account JSON key file', formatHint: '' }), true);
  assert.equal(isJsonKeyField({ multiline: false, label: 'Service Account JSON key file', formatHint: '' }), false);
  assert.equal(isJsonKeyField({ multiline: true, label: 'PEM certificate', formatHint: '-----BEGIN' }), false);
});

test('PIN status: a broker that does not say whether the PIN is required is taken to require it', () => {
  assert.equal(pinViewOf({ pinSet: false, failedAttempts: 0, lockedUntil: null }).required, true);
  assert.equal(pinViewOf({ pinSet: false, failedAttempts: 0, lockedUntil: null, required: false }).required, false);
  assert.equal(pinViewOf(undefined).known, false);
  const locked = pinViewOf({ pinSet: true, failedAttempts: 5, lockedUntil: { seconds: Date.now() / 1000 + 60, nanos: 0 } });
  assert.notEqual(locked.lockedUntil, '');
});

test('a locked broker: the link waits, a wrong passphrase is refused, the right one connects', { timeout: 120_000 }, async () => {
  const { BrokerLink } = require('../out/link.js');
  const passphrase = 'a test store passphrase 7';  // Never printed.
  const broker = await startLockedBroker(passphrase);
  const link = new BrokerLink();
  const states = [];
  link.on('state', (s) => states.push(s.kind));
  const reach = (kind, ms) => within(ms, new Promise((ok) => {
    if (link.state.kind === kind) ok();
    const on = (s) => { if (s.kind === kind) { link.off('state', on); ok(); } };
    link.on('state', on);
  }), `the link to be ${kind} (states: ${states.join(' ')})`);
  try {
    link.start(resolveSettings({ ...none, dataDir: broker.dataDir }));
    await reach('locked', 20_000);
    assert.match(link.state.message, /unlock/);
    assert.equal(link.client, undefined, 'no client for the rest of the extension while locked');
    await new Promise((ok) => setTimeout(ok, 2_500));  // A poll or more: still locked, nothing else tried.
    assert.deepEqual([...new Set(states)], ['connecting', 'locked']);

    await assert.rejects(link.unlock('not it'), (e) => e.code === 'PERMISSION_DENIED');
    assert.equal(link.state.kind, 'locked');

    await link.unlock(passphrase);
    await reach('connected', 20_000);
    assert.ok(!states.includes('down'), `no "not running" while the broker restarts: ${states.join(' ')}`);
    assert.match(broker.stdout(), /^credbrokerd: unlocked$/m);
    const { credentials } = await link.client.listCredentials({});
    assert.deepEqual(credentials, []);
  } finally {
    link.stop();
    await broker.stop();
  }
});
