// Level 1 (passkeys): the extension's passkey page (src/passkey/page.ts) in
// headless Chromium with the DevTools virtual authenticator (CTAP2,
// internal transport, user verification, presence simulated), against a
// real credbrokerd through @credbroker/client: register a passkey with the
// PIN, then approve a real `credctl request` with it — the agent gets the
// grant; and the same from the credential form's "Approve with passkey"
// button (the form in the webview harness, the ceremony on the page). The
// page is served at http://localhost:PORT, the origin the broker is
// started to accept, with the RP ID "localhost".
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { agentRequest, startBroker, within } from './support/broker.mjs';
import { Harness, launchBrowser } from './support/webview.mjs';

const require = createRequire(import.meta.url);
const { CredbrokerClient } = require('@credbroker/client');
const extDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const { PasskeyPage } = require(join(extDir, 'out/passkey/page.js'));

const PIN = 'heron-5713';
const AWS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

let broker;
let browser;
let client;
let passkeyPage;

before(async () => {
  // The page first: its origin is one of the broker's flags. It reaches
  // the broker through `client`, connected once the broker runs.
  const relay = {};
  for (const m of ['beginPasskeyRegistration', 'finishPasskeyRegistration', 'beginPasskeyAssertion', 'approve']) {
    relay[m] = (r) => client[m](r);
  }
  passkeyPage = new PasskeyPage(relay, 0);
  await passkeyPage.start();
  broker = await startBroker({ extraArgs: [`--passkey_origins=${passkeyPage.origin}`] });
  client = await CredbrokerClient.connect({ address: broker.address, tokenFile: broker.approverToken });
  await client.setApprovalPin({ newPin: PIN });
  await client.putCredential({ provider: 'aws', profile: '', values: { access_key_id: AWS_KEY_ID, secret_access_key: AWS_SECRET } });
  browser = await launchBrowser();
}, { timeout: 120_000 });

after(async () => {
  await browser?.close().catch(() => undefined);
  await passkeyPage?.stop();
  client?.close();
  await broker?.stop();
});

// A page with a virtual authenticator that answers at once, as a person
// touching a platform authenticator would.
async function pageWithAuthenticator() {
  const page = await browser.newPage();
  const cdp = await page.target().createCDPSession();
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  return { page, cdp, authenticatorId };
}

async function runCeremony(page, url) {
  await page.goto(url);
  await page.click('#go');
  await page.waitForFunction(() => document.getElementById('status')?.dataset.outcome !== undefined,
    { timeout: 30_000 });
  return page.$eval('#status', (e) => ({ outcome: e.dataset.outcome, text: e.textContent }));
}

describe('passkeys in the browser', () => {
  test('register with the PIN, then approve with the passkey: the agent gets the grant', { timeout: 120_000 }, async () => {
    const { page, cdp, authenticatorId } = await pageWithAuthenticator();
    try {
      const reg = passkeyPage.open({ kind: 'register', pin: PIN, name: 'virtual key' });
      const shown = await runCeremony(page, reg.url);
      assert.equal(shown.outcome, 'ok', shown.text);
      assert.equal((await reg.result).ok, true);
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      assert.equal(credentials.length, 1, 'the authenticator holds the new passkey');
      const listed = await client.listPasskeys({});
      assert.equal(listed.passkeys.length, 1);
      assert.equal(listed.passkeys[0].name, 'virtual key');
      assert.equal(listed.passkeys[0].id, Buffer.from(credentials[0].credentialId, 'base64').toString('base64url'));

      const agent = agentRequest(broker, 'aws', 'deploy with a virtual passkey');
      const requestId = await agent.requestId();
      const approval = passkeyPage.open({ kind: 'approve', requestId, action: 'deploy with a virtual passkey', approve: { requestId } });
      const approved = await runCeremony(page, approval.url);
      assert.equal(approved.outcome, 'ok', approved.text);
      const r = await within(30_000, agent.result, 'the agent\'s grant');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.grant.values.access_key_id, AWS_KEY_ID);
      assert.ok(r.grant.values.secret_access_key === AWS_SECRET, 'the agent received the stored secret');
      const used = await client.listPasskeys({});
      assert.ok(used.passkeys[0].signCount >= 1 || used.passkeys[0].lastUsed !== null, 'the use was recorded');
    } finally {
      await page.close();
    }
  });

  test('the form\'s "Approve with passkey": the ceremony in the browser approves the form\'s decision', { timeout: 120_000 }, async () => {
    const { page, cdp, authenticatorId } = await pageWithAuthenticator();
    const h = await new Harness(broker).start();
    const agent = agentRequest(broker, 'aws', 'deploy from the form with a passkey');
    let form;
    try {
      // This authenticator's own passkey (each virtual one starts empty).
      const reg = passkeyPage.open({ kind: 'register', pin: PIN, name: 'form key' });
      assert.equal((await runCeremony(page, reg.url)).outcome, 'ok');
      const requestId = await agent.requestId();
      // The host's ceremony as PasskeyCeremonies runs it, with the browser
      // tab in place of openExternal.
      const opened = [];
      const approveWithPasskey = async (request, action, signal) => {
        const c = passkeyPage.open({ kind: 'approve', requestId: request.requestId, action, approve: request });
        signal.addEventListener('abort', c.cancel, { once: true });
        opened.push(c.url);
        await page.goto(c.url);
        await page.bringToFront();  // WebAuthn asks for a focused document.
        await page.click('#go');
        return c.result;
      };
      form = await h.open(browser, { mode: 'approve', requestId }, { approveWithPasskey });
      await form.waitForSelector('#approve-passkey', { timeout: 20_000 });
      await form.click('#scope-session');
      await form.click('#approve-passkey');
      await form.waitForFunction(() => document.getElementById('app')?.getAttribute('data-outcome') === 'approved',
        { timeout: 30_000, polling: 200 }).catch(async (e) => {  // A background tab: no animation frames.
        const shown = await form.$eval('#status', (s) => s.textContent).catch(() => '?');
        const onPage = await page.$eval('#status', (s) => s.textContent).catch(() => '?');
        throw new Error(`${e.message}; the form says "${shown}", the passkey page "${onPage}"`);
      });
      assert.equal(opened.length, 1);
      assert.match(await form.$eval('#status', (e) => e.textContent), /Approved: grant \S+ \(session\)/);
      assert.equal(await page.$eval('#status', (e) => e.dataset.outcome), 'ok');
      const r = await within(30_000, agent.result, 'the agent\'s grant');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.grant.values.access_key_id, AWS_KEY_ID);
      assert.ok(r.grant.values.secret_access_key === AWS_SECRET, 'the agent received the stored secret');
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      assert.ok(credentials[0].signCount >= 1, 'the passkey signed the approval');
      assert.deepEqual(h.consoleErrors, []);
      assert.deepEqual(h.cspViolations, []);
    } finally {
      agent.kill();
      await form?.close();
      await page.close();
      await h.stop();
    }
  });

  test('a wrong PIN registers nothing and the page says why', { timeout: 60_000 }, async () => {
    const { page } = await pageWithAuthenticator();
    try {
      const before = (await client.listPasskeys({})).passkeys.length;
      const reg = passkeyPage.open({ kind: 'register', pin: 'not-the-pin', name: 'intruder' });
      const shown = await runCeremony(page, reg.url);
      assert.equal(shown.outcome, 'failed');
      assert.match(shown.text, /PERMISSION_DENIED/);
      assert.equal((await client.listPasskeys({})).passkeys.length, before);
    } finally {
      await page.close();
    }
  });

  test('a ceremony path answers once; a post from another origin is refused', { timeout: 60_000 }, async () => {
    const reg = passkeyPage.open({ kind: 'register', pin: PIN, name: 'x' });
    const foreign = await fetch(`${reg.url}/result`, { method: 'POST', body: '{}', headers: { origin: 'http://localhost:1' } });
    assert.equal(foreign.status, 403);
    const post = () => fetch(`${reg.url}/result`, { method: 'POST', body: '{}', headers: { origin: passkeyPage.origin } });
    const first = await post();
    assert.equal(first.status, 200);
    assert.equal((await first.json()).ok, false, 'no attestation: nothing registered');
    assert.equal((await reg.result).ok, false);
    assert.equal((await post()).status, 404, 'the path is spent');
    const unknown = await fetch(`${passkeyPage.origin}/passkey/nope`);
    assert.equal(unknown.status, 404);
  });
});
