// Level 1: the credential form's own code (media/form.js, built from
// src/webview/form.ts) in headless Chromium, against a real credbrokerd
// through the extension's FormSession and @credbroker/client. Agents are
// real `credctl request` processes. No secret value is printed: grants are
// compared in memory.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { agentRequest, startBroker, within } from './support/broker.mjs';
import { Harness, launchBrowser } from './support/webview.mjs';

const PIN = 'tulip-4821';
// AWS's documented example key pair: well-formed, and no real account's.
const AWS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

let broker;
let browser;
let h;

before(async () => {
  broker = await startBroker();
  browser = await launchBrowser();
  h = await new Harness(broker).start();
}, { timeout: 120_000 });

after(async () => {
  await browser?.close().catch(() => undefined);
  await h?.stop();
  await broker?.stop();
});

const q = (id) => `[id="${id}"]`;

async function text(page, id) {
  return page.$eval(q(id), (e) => e.textContent ?? '').catch(() => null);
}

async function typeInto(page, id, value) {
  await page.focus(q(id));
  await page.keyboard.type(value);
}

// Selects what a field holds and types over it, as a person replaces a value.
async function replaceIn(page, id, value) {
  await page.click(q(id), { clickCount: 3 });
  await page.keyboard.type(value);
}

async function settled(page) {
  await page.waitForFunction(() => !document.getElementById('app')?.hasAttribute('data-validating'),
    { timeout: 20_000 });
}

async function outcome(page, expected) {
  await page.waitForFunction((want) => document.getElementById('app')?.getAttribute('data-outcome') === want,
    { timeout: 30_000 }, expected);
}

async function checkPageClean(page) {
  const violations = await page.evaluate(() => window.__securityViolations);
  assert.deepEqual(violations, [], 'no Content-Security-Policy violation');
  assert.deepEqual(h.cspViolations, []);
  assert.deepEqual(h.consoleErrors, [], 'no script error in the page');
}

function serviceAccountKey(project) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const email = `deployer@${project}.iam.gserviceaccount.com`;
  return JSON.stringify({
    type: 'service_account',
    project_id: project,
    private_key_id: '0123456789abcdef0123456789abcdef01234567',
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    client_email: email,
    client_id: '112233445566778899001',
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: 'https://oauth2.googleapis.com/token',
  }, null, 2);
}

describe('the credential form in Chromium against a real broker', { concurrency: false }, () => {
  test('renders every field of every provider with its type, hint and guide', { timeout: 180_000 }, async () => {
    assert.ok(h.providerList.length >= 12, 'the broker lists its providers');
    for (const p of h.providerList) {
      const page = await h.open(browser, { mode: 'add', provider: p.id, profile: 'default' });
      try {
        for (const f of p.fields) {
          const info = await page.$eval(q(`f-${f.name}`), (e) => ({
            tag: e.tagName,
            type: e.getAttribute('type'),
            secret: e.classList.contains('secret'),
            label: document.querySelector(`label[for="${e.id}"]`)?.textContent ?? '',
            described: e.getAttribute('aria-describedby') ?? '',
          }));
          assert.equal(info.tag, f.multiline ? 'TEXTAREA' : 'INPUT', `${p.id}.${f.name}: element`);
          if (!f.multiline) assert.equal(info.type, f.sensitive ? 'password' : 'text', `${p.id}.${f.name}: masked when sensitive`);
          else assert.equal(info.secret, f.sensitive, `${p.id}.${f.name}: masked multiline`);
          assert.ok(info.label.includes(f.label), `${p.id}.${f.name}: labelled "${f.label}"`);
          if (f.optional) assert.match(info.label, /optional/, `${p.id}.${f.name}: marked optional`);
          if (f.derived) assert.match(info.label, /read from the key file/, `${p.id}.${f.name}: derived`);
          assert.equal(await text(page, `hint-${f.name}`), f.formatHint, `${p.id}.${f.name}: format hint`);
          assert.ok(info.described.includes(`msg-${f.name}`), `${p.id}.${f.name}: errors announced`);
          assert.equal(await page.$(q(`gen-${f.name}`)) !== null, f.generatable, `${p.id}.${f.name}: generate option`);
          const jsonKey = f.multiline && /JSON/i.test(f.formatHint + f.label);
          assert.equal(await page.$(q(`pick-field:${f.name}`)) !== null, jsonKey, `${p.id}.${f.name}: file picker`);
        }
        const steps = await page.$$eval('#how-to-get li', (lis) => lis.map((l) => l.textContent));
        assert.deepEqual(steps, p.howToGet, `${p.id}: how-to-get steps`);
        const perms = await page.$$eval('#required-permissions li', (lis) => lis.map((l) => l.textContent));
        assert.deepEqual(perms, p.requiredPermissions, `${p.id}: required permissions`);
        const connect = await page.$('#connect-oauth');
        assert.equal(connect !== null, p.oauth, `${p.id}: Connect button only for OAuth`);
        if (connect !== null) assert.equal(await page.$eval('#connect-oauth', (b) => b.disabled), true);
        assert.equal(await page.$('#custom-fields') !== null, p.arbitraryFields, `${p.id}: free-form secrets`);
        assert.equal(await page.$(q('pick-credentials-file')) !== null, p.id === 'azure', `${p.id}: JSON file import`);
        // Keyboard: every control is focusable and has an accessible name.
        const unnamed = await page.$$eval('input, textarea, button', (els) => els.filter((e) => {
          if (e.tabIndex < 0) return true;
          if (e.tagName === 'BUTTON') return (e.textContent ?? '').trim() === '';
          return document.querySelector(`label[for="${e.id}"]`) === null;
        }).map((e) => e.id || e.outerHTML.slice(0, 60)));
        assert.deepEqual(unnamed, [], `${p.id}: controls without a label`);

        // Live validation: what the broker says of a malformed value is what
        // the form shows beside the field.
        const first = p.fields.find((f) => !f.optional && !f.derived && !f.generatable);
        if (first !== undefined) {
          const bad = first.multiline ? '{"type": ' : 'x y';
          await typeInto(page, `f-${first.name}`, bad);
          await settled(page);
          const direct = await h.client.validateCredential({ provider: p.id, profile: 'default', values: { [first.name]: bad } });
          const errors = direct.findings.filter((f) => f.field === first.name && f.severity === 'SEVERITY_ERROR');
          const shown = await text(page, `msg-${first.name}`);
          for (const e of errors) assert.ok(shown.includes(e.message), `${p.id}.${first.name}: shows "${e.message}"`);
          const invalid = await page.$eval(q(`f-${first.name}`), (e) => e.getAttribute('aria-invalid'));
          assert.equal(invalid === 'true', errors.length > 0, `${p.id}.${first.name}: aria-invalid`);
        }
        await checkPageClean(page);
      } finally {
        await page.close();
      }
    }
  });

  test('approves an AWS need: the first approval chooses the PIN, the agent gets the grant', { timeout: 120_000 }, async () => {
    const agent = agentRequest(broker, 'aws', 'deploy to AWS in us-east-1', { context: ['region=us-east-1'] });
    const id = await agent.requestId();
    const page = await h.open(browser, { mode: 'approve', requestId: id });
    try {
      assert.match(await text(page, 'request-peer'), new RegExp(`credctl, pid ${agent.pid}\\b`));
      assert.equal(await text(page, 'request-action'), 'deploy to AWS in us-east-1');
      assert.match(await text(page, 'request-credential'), /aws.*default/);
      assert.ok(await page.$('#new-pin-repeat'), 'no PIN yet: the form asks for one, twice');
      await typeInto(page, 'f-access_key_id', AWS_KEY_ID);
      await typeInto(page, 'f-secret_access_key', AWS_SECRET);
      await settled(page);
      assert.equal(await text(page, 'msg-access_key_id'), '');
      // Two different PINs are refused before anything is sent.
      await typeInto(page, 'new-pin', PIN);
      await typeInto(page, 'new-pin-repeat', `${PIN}x`);
      await page.click('#approve');
      assert.match(await text(page, 'msg-new_pin'), /differ/);
      assert.equal((await h.client.getApprovalPinStatus({})).pinSet, false);
      await page.$eval('#new-pin-repeat', (e) => { e.value = ''; });
      await typeInto(page, 'new-pin-repeat', PIN);
      await page.keyboard.press('Tab');
      await page.click('#approve');
      await outcome(page, 'approved');
      const r = await within(30_000, agent.result, 'the agent\'s grant');
      assert.equal(r.code, 0, `agent exit: ${r.stderr}`);
      assert.equal(r.grant.provider, 'aws');
      assert.equal(r.grant.values.access_key_id, AWS_KEY_ID);
      assert.ok(r.grant.values.secret_access_key === AWS_SECRET, 'the agent received the secret typed');
      assert.equal((await h.client.getApprovalPinStatus({})).pinSet, true);
      const left = await page.$$eval('input[type=password], input[type=text], textarea', (els) => els.filter((e) => e.value !== '').length);
      assert.equal(left, 0, 'every input is emptied after the submit');
      assert.deepEqual(h.changes.at(-1)?.outcome, 'approved');
      await checkPageClean(page);
    } finally {
      agent.kill();
      await page.close();
    }
  });

  test('a wrong PIN is refused inline; the right one approves with the stored credential', { timeout: 120_000 }, async () => {
    const agent = agentRequest(broker, 'aws', 'deploy again');
    const id = await agent.requestId();
    const page = await h.open(browser, { mode: 'approve', requestId: id });
    try {
      assert.match(await text(page, 'masked-secret_access_key'), /^Stored: /);
      assert.equal(await page.$eval('#keep-secret_access_key', (e) => e.checked), true, 'keep current by default');
      assert.equal(await page.$('#new-pin'), null, 'a PIN is set: one field');
      await typeInto(page, 'pin', '0000-wrong');
      await page.click('#approve');
      await page.waitForFunction(() => (document.getElementById('msg-pin')?.textContent ?? '') !== '' ||
        /error/.test(document.getElementById('status')?.className ?? ''), { timeout: 20_000 });
      assert.equal(await page.$eval('#pin', (e) => e.value.length), 0, 'the PIN field is emptied after a try');
      assert.equal(await page.$eval('#app', (e) => e.getAttribute('data-outcome')), null);
      const pending = await h.client.listPending();
      assert.ok(pending.some((r) => r.requestId === id), 'the request stays pending');
      await typeInto(page, 'pin', PIN);
      await page.click('#approve');
      await outcome(page, 'approved');
      const r = await within(30_000, agent.result, 'the agent\'s grant');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.grant.values.access_key_id, AWS_KEY_ID);
      await checkPageClean(page);
    } finally {
      agent.kill();
      await page.close();
    }
  });

  test('"Approve with passkey" shows only with a passkey registered and posts the form\'s decision', { timeout: 120_000 }, async () => {
    const agent = agentRequest(broker, 'aws', 'deploy with a passkey');
    const id = await agent.requestId();
    // The host's ceremony, scripted: each call takes the next answer.
    const calls = [];
    const answers = [];
    const approveWithPasskey = (request, action, signal) => {
      calls.push({ request, action });
      return answers.shift()(request, signal);
    };
    // No passkey registered (this broker has none): no button, though the
    // host could run the ceremony.
    const plain = await h.open(browser, { mode: 'approve', requestId: id }, { approveWithPasskey });
    try {
      assert.equal(await plain.$('#approve-passkey'), null, 'no passkey registered: no passkey button');
      assert.equal((await h.client.listPasskeys({})).passkeys.length, 0);
    } finally {
      await plain.close();
    }
    // The same broker, as if a passkey were registered.
    const withPasskey = new Proxy(h.client, {
      get: (target, key) => key === 'listPasskeys'
        ? async () => ({ passkeys: [{ id: 'cHJldGVuZA', name: 'a key' }] })
        : typeof target[key] === 'function' ? target[key].bind(target) : target[key],
    });
    const page = await h.open(browser, { mode: 'approve', requestId: id }, { client: withPasskey, approveWithPasskey });
    try {
      assert.equal(await text(page, 'approve-passkey'), 'Approve with passkey');
      assert.equal(await page.$eval('#cancel-passkey', (e) => e.hidden), true);
      const waitingOff = () => page.waitForFunction(() => {
        const b = document.getElementById('approve-passkey');
        return b !== null && !b.disabled && document.getElementById('cancel-passkey')?.hidden === true;
      }, { timeout: 20_000 });

      // 1. The person cancels while the browser page waits.
      answers.push((request, signal) => new Promise((ok) => signal.addEventListener('abort',
        () => ok({ ok: false, code: 'CANCELLED', message: 'cancelled' }), { once: true })));
      await page.click('#scope-session');
      await page.$eval('#ttl', (e) => { e.value = ''; });
      await typeInto(page, 'ttl', '15m');
      await page.click('#approve-passkey');
      await page.waitForFunction(() => document.getElementById('cancel-passkey')?.hidden === false, { timeout: 20_000 });
      assert.equal(await page.$eval('#approve', (e) => e.disabled), true, 'one decision at a time');
      const sent = h.sent.find((m) => m.type === 'approveWithPasskey');
      assert.deepEqual({ ...sent, values: Object.keys(sent.values) },
        { type: 'approveWithPasskey', values: [], generate: [], scope: 'session', ttlSeconds: 900, actionPattern: '' },
        'the form posts its decision, with no PIN');
      assert.ok(!('pin' in sent));
      assert.equal(calls.length, 1);
      assert.equal(calls[0].action, 'deploy with a passkey');
      assert.deepEqual(calls[0].request, { requestId: id, values: {}, generate: [], scope: 'SCOPE_SESSION',
        ttl: { seconds: 900, nanos: 0 }, actionPattern: '' });
      await page.click('#cancel-passkey');
      await waitingOff();
      assert.match(await text(page, 'status'), /cancelled/);

      // 2. The broker refuses the assertion: the error is shown in the form.
      answers.push(async () => ({ ok: false, code: 'PERMISSION_DENIED',
        message: 'the passkey assertion does not verify', violations: [] }));
      await page.click('#approve-passkey');
      await waitingOff();
      assert.match(await text(page, 'status'), /the passkey assertion does not verify/);
      assert.match(await page.$eval('#status', (e) => e.className), /error/);
      assert.equal(await page.$eval('#app', (e) => e.getAttribute('data-outcome')), null);
      assert.ok((await h.client.listPending()).some((r) => r.requestId === id), 'the request stays pending');

      // 3. The ceremony succeeds. The broker's decision is made here with the
      // PIN in the passkey's place: what the form asked for is granted.
      answers.push(async (request) => {
        const r = await h.client.approve({ ...request, pin: PIN });
        return { ok: true, message: 'Approved', grantId: r.grantId, standingApprovalId: r.standingApprovalId };
      });
      await page.click('#approve-passkey');
      await outcome(page, 'approved');
      assert.match(await text(page, 'status'), /Approved: grant \S+ \(session\)/);
      const r = await within(30_000, agent.result, 'the agent\'s grant');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.grant.values.access_key_id, AWS_KEY_ID);
      assert.equal(h.changes.at(-1)?.outcome, 'approved');
      await checkPageClean(page);
    } finally {
      agent.kill();
      await page.close();
    }
  });

  test('denies with a reason the agent sees', { timeout: 60_000 }, async () => {
    const agent = agentRequest(broker, 'digitalocean', 'deploy to DigitalOcean');
    const id = await agent.requestId();
    const page = await h.open(browser, { mode: 'approve', requestId: id });
    try {
      await typeInto(page, 'deny-reason', 'not this account');
      await page.keyboard.press('Enter');
      await outcome(page, 'denied');
      const r = await within(30_000, agent.result, 'the agent\'s answer');
      assert.equal(r.code, 3, 'credctl exits 3 when denied');
      assert.match(r.stderr, /denied: not this account/);
    } finally {
      agent.kill();
      await page.close();
    }
  });

  test('a malformed access key is an inline field error and nothing is approved', { timeout: 60_000 }, async () => {
    const agent = agentRequest(broker, 'aws', 'deploy', { profile: 'staging' });
    const id = await agent.requestId();
    const page = await h.open(browser, { mode: 'approve', requestId: id });
    try {
      await typeInto(page, 'f-access_key_id', 'AKIA123');
      await settled(page);
      assert.match(await text(page, 'msg-access_key_id'), /7 characters.*20/);
      assert.equal(await page.$eval('#f-access_key_id', (e) => e.getAttribute('aria-invalid')), 'true');
      await typeInto(page, 'f-secret_access_key', AWS_SECRET);
      await typeInto(page, 'pin', PIN);
      await page.click('#approve');
      await page.waitForFunction(() => /error/.test(document.getElementById('status')?.className ?? ''), { timeout: 20_000 });
      assert.match(await text(page, 'msg-access_key_id'), /\S/, 'the broker\'s violation is shown at the field');
      assert.ok((await h.client.listPending()).some((r) => r.requestId === id), 'still pending');
      await typeInto(page, 'deny-reason', 'typo');
      await page.click('#deny');
      await outcome(page, 'denied');
      assert.equal((await within(30_000, agent.result, 'agent')).code, 3);
    } finally {
      agent.kill();
      await page.close();
    }
  });

  test('broker text is shown as text, never as markup', { timeout: 60_000 }, async () => {
    const action = '<img src=x onerror="window.__pwned=1"><b>deploy</b>';
    const agent = agentRequest(broker, 'aws', action, { context: ['cluster=<script>window.__pwned=2</script>'] });
    const id = await agent.requestId();
    const page = await h.open(browser, { mode: 'approve', requestId: id });
    try {
      assert.equal(await text(page, 'request-action'), action);
      assert.equal(await page.$('#app img, #app b, #app script'), null);
      assert.equal(await page.evaluate(() => window.__pwned), undefined);
      await page.click('#deny');
      await outcome(page, 'denied');
      await checkPageClean(page);
    } finally {
      agent.kill();
      await page.close();
    }
  });

  test('a request decided elsewhere ends the form', { timeout: 60_000 }, async () => {
    const agent = agentRequest(broker, 'aws', 'deploy elsewhere');
    const id = await agent.requestId();
    const page = await h.open(browser, { mode: 'approve', requestId: id });
    try {
      await h.client.deny({ requestId: id, reason: 'from credctl' });
      await typeInto(page, 'pin', PIN);
      await page.click('#approve');
      await outcome(page, 'resolved');
      assert.match(await text(page, 'status'), /already decided|ended/);
    } finally {
      agent.kill();
      await page.close();
    }
  });

  test('standing approval: the scope, its action pattern and lifetime; a later need is granted at once', { timeout: 90_000 }, async () => {
    const first = agentRequest(broker, 'aws', 'deploy web to us-east-1');
    const id = await first.requestId();
    const page = await h.open(browser, { mode: 'approve', requestId: id });
    try {
      assert.equal(await page.$eval('#pattern-field', (e) => e.hidden), true, 'no pattern for a single grant');
      await page.click('#scope-standing');
      assert.equal(await page.$eval('#pattern-field', (e) => e.hidden), false);
      assert.equal(await page.$eval('#action-pattern', (e) => e.value), 'deploy web to us-east-1');
      await page.$eval('#action-pattern', (e) => { e.value = ''; });
      await typeInto(page, 'action-pattern', 'deploy *');
      await typeInto(page, 'ttl', 'two hours');
      await typeInto(page, 'pin', PIN);
      await page.click('#approve');
      assert.match(await text(page, 'msg-ttl'), /15m, 2h or 30d/, 'a lifetime it cannot read is refused in the form');
      await page.$eval('#ttl', (e) => { e.value = ''; });
      await typeInto(page, 'ttl', '2h');
      assert.equal(await page.$eval('#pin', (e) => e.value.length), PIN.length, 'the PIN typed is still there');
      await page.click('#approve');
      await outcome(page, 'approved');
      assert.match(await text(page, 'status'), /standing approval s-/);
      assert.equal((await within(30_000, first.result, 'agent')).code, 0);
      const standing = (await h.client.listStandingApprovals({})).approvals;
      const s = standing.find((a) => a.actionPattern === 'deploy *');
      assert.ok(s !== undefined, 'the standing approval exists');
      const lifetime = (s.expiresAt.seconds - s.createdAt.seconds) / 3600;
      assert.ok(Math.abs(lifetime - 2) < 0.01, `lasts 2h (${lifetime}h)`);
      // A need the pattern covers is granted without asking anyone.
      const second = agentRequest(broker, 'aws', 'deploy api to us-east-1');
      const r = await within(30_000, second.result, 'the covered need');
      assert.equal(r.code, 0, r.stderr);
      await h.client.revokeStandingApproval({ id: s.id });
    } finally {
      first.kill();
      await page.close();
    }
  });

  test('Azure: a need approved from a credentials JSON file', { timeout: 90_000 }, async () => {
    const agent = agentRequest(broker, 'azure', 'deploy to Azure', { profile: 'fromfile' });
    const id = await agent.requestId();
    const page = await h.open(browser, { mode: 'approve', requestId: id });
    try {
      h.files.push({
        name: 'sdk-auth.json',
        contents: JSON.stringify({
          clientId: '12121212-3434-4565-8787-909090909090',
          clientSecret: 'azure-example-secret-value-9876543210',
          tenantId: 'abababab-cdcd-4efe-8a0a-121212121212',
          subscriptionId: 'cdcdcdcd-efef-4a1a-9b2b-343434343434',
          resourceGroup: 'agent-rg',
        }),
      });
      await page.click(q('pick-credentials-file'));
      await page.waitForFunction(() => (document.getElementById('file-credentials-file')?.textContent ?? '') !== '');
      await settled(page);
      await typeInto(page, 'pin', PIN);
      await page.click('#approve');
      await outcome(page, 'approved');
      const r = await within(30_000, agent.result, 'the agent\'s grant');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.grant.values.client_id, '12121212-3434-4565-8787-909090909090');
      assert.equal(r.grant.values.resource_group, 'agent-rg');
      assert.ok(r.grant.values.client_secret === 'azure-example-secret-value-9876543210', 'the secret from the file');
    } finally {
      agent.kill();
      await page.close();
    }
  });

  test('updates a stored credential: secrets kept, a plain field changed', { timeout: 60_000 }, async () => {
    const before = await h.client.getCredential({ provider: 'aws', profile: 'default' });
    const page = await h.open(browser, { mode: 'update', provider: 'aws', profile: 'default' });
    try {
      assert.equal(await page.$eval('#f-access_key_id', (e) => e.value), AWS_KEY_ID, 'plain values shown');
      assert.equal(await page.$eval('#f-secret_access_key', (e) => e.value.length), 0, 'secrets never sent to the page');
      const masked = before.fields.find((f) => f.name === 'secret_access_key').display;
      assert.equal(await text(page, 'masked-secret_access_key'), `Stored: ${masked}`);
      assert.ok(!masked.includes(AWS_SECRET.slice(0, 8)), 'masked');
      // The first approval left the region empty: the need's context filled it.
      assert.equal(await page.$eval('#f-region', (e) => e.value), 'us-east-1');
      await replaceIn(page, 'f-region', 'eu-west-1');
      await settled(page);
      await page.click('#save');
      await outcome(page, 'saved');
      const now = await h.client.getCredential({ provider: 'aws', profile: 'default' });
      assert.equal(now.version, before.version + 1);
      assert.equal(now.fields.find((f) => f.name === 'region').display, 'eu-west-1');
      assert.equal(now.fields.find((f) => f.name === 'secret_access_key').display, masked, 'the secret was kept');
    } finally {
      await page.close();
    }
  });

  test('GCP: a key file chosen with the picker fills the key; the project id is read from it', { timeout: 60_000 }, async () => {
    const page = await h.open(browser, { mode: 'add', provider: 'gcp', profile: 'default' });
    try {
      h.files.push({ name: 'deployer-key.json', contents: serviceAccountKey('credbroker-test-123') });
      await page.click(q('pick-field:service_account_json'));
      await page.waitForFunction(() => (document.getElementById('file-field:service_account_json')?.textContent ?? '') !== '');
      assert.match(await text(page, 'file-field:service_account_json'), /^deployer-key\.json \(\d+ bytes\)$/);
      await settled(page);
      assert.equal(await text(page, 'msg-service_account_json'), '');
      assert.match(await text(page, 'derived-project_id'), /credbroker-test-123/);
      assert.equal(await page.$eval('#f-service_account_json', (e) => e.value.length), 0, 'the key never enters the page');
      await page.click('#save');
      await outcome(page, 'saved');
      const c = await h.client.getCredential({ provider: 'gcp', profile: 'default' });
      assert.equal(c.readiness, 'READINESS_READY');
      assert.equal(c.fields.find((f) => f.name === 'project_id').display, 'credbroker-test-123');
    } finally {
      await page.close();
    }
  });

  test('GCP: a malformed key file is an inline error', { timeout: 60_000 }, async () => {
    const page = await h.open(browser, { mode: 'add', provider: 'gcp', profile: 'broken' });
    try {
      h.files.push({ name: 'notes.json', contents: '{"type": "authorized_user", "client_id": "x"}' });
      await page.click(q('pick-field:service_account_json'));
      await page.waitForFunction(() => (document.getElementById('file-field:service_account_json')?.textContent ?? '') !== '');
      await settled(page);
      assert.match(await text(page, 'msg-service_account_json'), /user credentials|not a service account/);
      await page.click('#save');
      await page.waitForFunction(() => /error/.test(document.getElementById('status')?.className ?? ''), { timeout: 20_000 });
      await assert.rejects(h.client.getCredential({ provider: 'gcp', profile: 'broken' }), /NOT_FOUND|not found|no /i);
    } finally {
      await page.close();
    }
  });

  test('Azure: the credentials JSON file fills every field', { timeout: 60_000 }, async () => {
    const page = await h.open(browser, { mode: 'add', provider: 'azure', profile: 'default' });
    try {
      h.files.push({
        name: 'sp.json',
        contents: JSON.stringify({
          appId: '11111111-2222-4333-8444-555555555555',
          password: 'azure-example-secret-value-0123456789',
          tenant: '66666666-7777-4888-9999-000000000000',
          subscriptionId: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee',
          resourceGroup: 'deploy-rg',
        }),
      });
      await page.click(q('pick-credentials-file'));
      await page.waitForFunction(() => (document.getElementById('file-credentials-file')?.textContent ?? '') !== '');
      await settled(page);
      await page.click('#save');
      await outcome(page, 'saved');
      const c = await h.client.getCredential({ provider: 'azure', profile: 'default' });
      assert.equal(c.readiness, 'READINESS_READY');
      assert.equal(c.fields.find((f) => f.name === 'client_id').display, '11111111-2222-4333-8444-555555555555');
      assert.equal(c.fields.find((f) => f.name === 'resource_group').display, 'deploy-rg');
    } finally {
      await page.close();
    }
  });

  test('Redis Cloud: the broker generates the database password when asked', { timeout: 60_000 }, async () => {
    const page = await h.open(browser, { mode: 'add', provider: 'redis-cloud', profile: 'default' });
    try {
      await typeInto(page, 'f-account_key', 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v2W3x4Y5');
      await typeInto(page, 'f-user_key', 'Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2H1g0F9e8D7c6B5');
      await page.click('#gen-database_password');
      assert.equal(await page.$eval('#f-database_password', (e) => e.disabled), true);
      await settled(page);
      await page.click('#save');
      await outcome(page, 'saved');
      const c = await h.client.getCredential({ provider: 'redis-cloud', profile: 'default' });
      assert.equal(c.fields.find((f) => f.name === 'database_password').set, true);
    } finally {
      await page.close();
    }
  });

  test('custom: named application secrets', { timeout: 60_000 }, async () => {
    const page = await h.open(browser, { mode: 'add', provider: 'custom', profile: 'app' });
    try {
      await typeInto(page, 'custom-name-0', 'STRIPE_API_KEY');
      await typeInto(page, 'custom-value-0', 'sk_test_example_0123456789');
      await page.click('#add-custom');
      const rows = await page.$$('.custom-row');
      assert.equal(rows.length, 2);
      await settled(page);
      await page.click('#save');
      await outcome(page, 'saved');
      const c = await h.client.getCredential({ provider: 'custom', profile: 'app' });
      assert.ok(c.fields.some((f) => f.name === 'STRIPE_API_KEY' && f.set));
    } finally {
      await page.close();
    }
  });
});

describe('a passphrase-protected store', { concurrency: false }, () => {
  let pbroker;
  let ph;
  before(async () => {
    pbroker = await startBroker({ passphrase: 'correct horse battery staple 42' });
    ph = await new Harness(pbroker).start();
  }, { timeout: 120_000 });
  after(async () => {
    await ph?.stop();
    await pbroker?.stop();
  });

  test('the first PIN needs the store\'s passphrase, typed in the form', { timeout: 90_000 }, async (t) => {
    const status = await ph.client.getApprovalPinStatus({});
    if (!status.firstPinNeedsPassphrase) {
      t.skip('this credbrokerd does not ask for the passphrase to set the first PIN');
      return;
    }
    const agent = agentRequest(pbroker, 'digitalocean', 'deploy to DigitalOcean');
    const id = await agent.requestId();
    const page = await ph.open(browser, { mode: 'approve', requestId: id });
    try {
      assert.ok(await page.$('#store-passphrase'), 'the form asks for the store\'s passphrase');
      await typeInto(page, 'f-token', `dop_v1_${'0123456789abcdef'.repeat(4)}`);
      await typeInto(page, 'new-pin', PIN);
      await typeInto(page, 'new-pin-repeat', PIN);
      await typeInto(page, 'store-passphrase', 'not the passphrase');
      await page.click('#approve');
      await page.waitForFunction(() => /error/.test(document.getElementById('status')?.className ?? ''), { timeout: 30_000 });
      assert.equal((await ph.client.getApprovalPinStatus({})).pinSet, false, 'a wrong passphrase sets no PIN');
      await typeInto(page, 'new-pin', PIN);
      await typeInto(page, 'new-pin-repeat', PIN);
      await typeInto(page, 'store-passphrase', 'correct horse battery staple 42');
      await page.click('#approve');
      await outcome(page, 'approved');
      const r = await within(30_000, agent.result, 'the agent\'s grant');
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await ph.client.getApprovalPinStatus({})).pinSet, true);
    } finally {
      agent.kill();
      await page.close();
    }
  });
});
