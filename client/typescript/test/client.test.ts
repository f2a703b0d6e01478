// CredbrokerClient against a real credbrokerd: connecting, the credential
// calls, BadRequest field violations, tokens and the data directory rules.
import * as assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  CredbrokerClient,
  defaultAddress,
  defaultDataDir,
  readTokenFile,
  toDate,
} from '../src';
import { Broker } from './support/broker';
import { expectBrokerError } from './support/errors';

// Format-valid AWS values (AWS's documented example key).
const AWS_VALUES = {
  access_key_id: 'AKIAIOSFODNN7EXAMPLE',
  secret_access_key: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  region: 'us-east-1',
};

describe('CredbrokerClient', () => {
  let broker: Broker;
  let client: CredbrokerClient;

  before(async () => {
    broker = await Broker.start();
    client = await CredbrokerClient.connect({ dataDir: broker.dataDir });
  });

  after(async () => {
    client?.close();
    await broker?.dispose();
  });

  it('connects over the data directory socket and lists providers', async () => {
    assert.equal(client.address, broker.address);
    assert.equal(await client.checkHealth(), 'SERVING');
    const { providers } = await client.listProviders();
    const ids = providers.map((p) => p.id);
    for (const id of ['aws', 'gcp', 'github', 'custom']) assert.ok(ids.includes(id), `${id} in ${ids}`);
    const aws = providers.find((p) => p.id === 'aws')!;
    const secret = aws.fields.find((f) => f.name === 'secret_access_key');
    assert.ok(secret !== undefined && secret.sensitive, 'secret_access_key is a sensitive field');
    assert.ok(aws.howToGet.length > 0 && aws.requiredPermissions.length > 0);
  });

  it('puts, gets, lists and deletes a credential without returning secrets', async () => {
    const put = await client.putCredential({ provider: 'aws', profile: 'ts-crud', values: AWS_VALUES });
    assert.ok(put.credential !== null);
    assert.equal(put.credential.provider, 'aws');
    assert.equal(put.credential.profile, 'ts-crud');
    assert.equal(put.credential.version, 1);
    assert.equal(typeof put.credential.version, 'number');

    const got = await client.getCredential({ provider: 'aws', profile: 'ts-crud' });
    assert.equal(got.readiness, 'READINESS_READY');
    assert.ok(toDate(got.updatedAt)!.getTime() > Date.now() - 600_000, 'updatedAt is recent');
    const byName = new Map(got.fields.map((f) => [f.name, f]));
    assert.equal(byName.get('region')?.display, 'us-east-1');
    const secret = byName.get('secret_access_key');
    assert.ok(secret !== undefined && secret.sensitive && secret.set, 'the secret is reported as set');
    assert.ok(!JSON.stringify(got).includes(AWS_VALUES.secret_access_key), 'GetCredential returned the secret');

    const listed = await client.listCredentials({ provider: 'aws' });
    assert.ok(listed.credentials.some((c) => c.profile === 'ts-crud' && c.version === 1));
    assert.ok(!JSON.stringify(listed).includes(AWS_VALUES.secret_access_key), 'ListCredentials returned the secret');

    const second = await client.putCredential({
      provider: 'aws', profile: 'ts-crud', values: { region: 'eu-west-1' }, keepExisting: true,
    });
    assert.equal(second.credential?.version, 2);
    const versions = await client.listCredentialVersions({ provider: 'aws', profile: 'ts-crud' });
    assert.deepEqual(versions.versions.map((v) => [v.version, v.current]), [[1, false], [2, true]]);

    const deleted = await client.deleteCredential({ provider: 'aws', profile: 'ts-crud' });
    assert.equal(deleted.versionsDeleted, 2);
    await expectBrokerError(client.getCredential({ provider: 'aws', profile: 'ts-crud' }), 'NOT_FOUND');
  });

  it('decodes BadRequest field violations for malformed values and stores nothing', async () => {
    const e = await expectBrokerError(client.putCredential({
      provider: 'aws', profile: 'ts-bad',
      values: { access_key_id: 'not-a-key', secret_access_key: 'short' },
    }), 'INVALID_ARGUMENT');
    assert.equal(e.grpcCode, 3);
    assert.ok(e.message.length > 0);
    const fields = e.fieldViolations.map((v) => v.field).sort();
    assert.deepEqual(fields, ['values.access_key_id', 'values.secret_access_key']);
    for (const v of e.fieldViolations) assert.ok(v.description.length > 10, `${v.field} says what to fix`);
    await expectBrokerError(client.getCredential({ provider: 'aws', profile: 'ts-bad' }), 'NOT_FOUND');

    const unknown = await expectBrokerError(client.getCredential({ provider: 'no-such-provider' }), 'INVALID_ARGUMENT');
    assert.match(unknown.message, /unknown provider/);
  });

  it('validates candidate values and resolves requirements', async () => {
    const v = await client.validateCredential({ provider: 'aws', values: AWS_VALUES });
    assert.equal(v.valid, true);
    const bad = await client.validateCredential({ provider: 'aws', values: { access_key_id: 'x' } });
    assert.equal(bad.valid, false);
    assert.ok(bad.findings.some((f) => f.field === 'access_key_id' && f.severity === 'SEVERITY_ERROR'));
    const req = await client.resolveRequirements({ targets: ['aws'] });
    assert.equal(req.requirements[0]?.provider, 'aws');
  });

  it('answers the listing calls', async () => {
    assert.deepEqual((await client.listGrants()).grants, []);
    assert.deepEqual((await client.listStandingApprovals()).approvals, []);
    assert.deepEqual((await client.listBindings()).bindings, []);
    const audit = await client.listAuditEvents({ kind: 'credential.put' });
    assert.ok(audit.events.length >= 1 && audit.events.every((e) => e.kind === 'credential.put'));
    assert.ok(!JSON.stringify(audit).includes(AWS_VALUES.secret_access_key), 'the audit log holds no secret');
    const verified = await client.verifyAuditLog();
    assert.equal(verified.intact, true);
    assert.ok(verified.eventsChecked > 0);
    const pin = await client.getApprovalPinStatus();
    assert.equal(pin.pinSet, false);
    const def = await client.setDefaultProfile({ provider: 'github', profile: 'work' });
    assert.equal(def.profile, 'work');
    assert.equal(def.configured, false);
  });

  it('reads token files without surrounding whitespace', async () => {
    const token = broker.approverToken();
    const file = path.join(broker.root, 'padded.token');
    writeFileSync(file, `  \t${token}\r\n\n`, { mode: 0o600 });
    assert.ok((await readTokenFile(file)) === token, 'readTokenFile trims the whitespace');
    const padded = await CredbrokerClient.connect({ address: broker.address, tokenFile: file });
    try {
      assert.ok((await padded.listProviders()).providers.length > 0);
    } finally {
      padded.close();
    }

    writeFileSync(file, '\n \n');
    await expectBrokerError(readTokenFile(file), 'INVALID_ARGUMENT');
    const missing = await expectBrokerError(
      CredbrokerClient.connect({ address: broker.address, tokenFile: path.join(broker.root, 'none.token') }),
      'NOT_FOUND');
    assert.match(missing.message, /start credbrokerd/);
  });

  it('fails with UNAUTHENTICATED for a wrong token and PERMISSION_DENIED for the agent token', async () => {
    const wrong = await CredbrokerClient.connect({ address: broker.address, token: 'not-the-token' });
    try {
      await expectBrokerError(wrong.listProviders(), 'UNAUTHENTICATED');
    } finally {
      wrong.close();
    }
    const agent = await CredbrokerClient.connect({ address: broker.address, tokenFile: broker.agentTokenFile });
    try {
      await expectBrokerError(agent.listCredentials(), 'PERMISSION_DENIED');
    } finally {
      agent.close();
    }
  });

  it('cancels a call whose signal aborts, refuses calls once closed, and keeps each within its deadline', async () => {
    const aborted = new AbortController();
    aborted.abort();
    await expectBrokerError(client.listProviders({}, { signal: aborted.signal }), 'CANCELLED');

    const closed = await CredbrokerClient.connect({ address: broker.address, tokenFile: broker.approverTokenFile });
    closed.close();
    await expectBrokerError(closed.listProviders(), 'FAILED_PRECONDITION');
    await expectBrokerError(closed.listPending(), 'FAILED_PRECONDITION');

    const nowhere = await CredbrokerClient.connect({
      address: `unix:${path.join(broker.root, 'nobody.sock')}`, token: 't', timeoutMs: 2_000,
    });
    try {
      const started = Date.now();
      const e = await expectBrokerError(nowhere.listProviders(), 'UNAVAILABLE');
      assert.match(e.message, /is credbrokerd running/);
      assert.ok(Date.now() - started < 5_000, 'a call to no broker ends within its deadline');
      await expectBrokerError(nowhere.waitForReady(300), 'UNAVAILABLE');
    } finally {
      nowhere.close();
    }
  });
});

describe('TLS over loopback TCP', () => {
  let broker: Broker;

  before(async () => {
    broker = await Broker.start({ tcp: true });
  });

  after(async () => {
    await broker?.dispose();
  });

  it('trusts the data directory\'s tls.crt by default', async () => {
    const client = await CredbrokerClient.connect({ address: broker.tcpAddress, dataDir: broker.dataDir });
    try {
      assert.equal(client.address, broker.tcpAddress);
      assert.ok((await client.listProviders()).providers.length > 0);
    } finally {
      client.close();
    }
  });

  it('fails clearly without a readable CA file, and refuses a certificate it does not trust', async () => {
    await expectBrokerError(CredbrokerClient.connect({
      address: broker.tcpAddress, dataDir: broker.dataDir, tlsCaFile: path.join(broker.root, 'none.crt'),
    }), 'FAILED_PRECONDITION');

    // The system roots do not include the broker's self-signed certificate.
    const untrusting = await CredbrokerClient.connect({
      address: broker.tcpAddress, dataDir: path.join(broker.root, 'elsewhere'),
      tokenFile: broker.approverTokenFile, timeoutMs: 5_000,
    });
    try {
      await expectBrokerError(untrusting.listProviders(), 'UNAVAILABLE');
    } finally {
      untrusting.close();
    }
  });
});

describe('the default data directory', () => {
  it('follows credctl: $CREDBROKER_DATA_DIR, $XDG_DATA_HOME/credbroker, ~/.local/share/credbroker', () => {
    assert.equal(defaultDataDir({ CREDBROKER_DATA_DIR: '/d', XDG_DATA_HOME: '/x', HOME: '/h' }), '/d');
    assert.equal(defaultDataDir({ XDG_DATA_HOME: '/x', HOME: '/h' }), '/x/credbroker');
    assert.equal(defaultDataDir({ CREDBROKER_DATA_DIR: '', HOME: '/h' }), '/h/.local/share/credbroker');
    assert.equal(defaultDataDir({}), '/tmp/.local/share/credbroker');
    assert.equal(defaultAddress('/d'), 'unix:/d/broker.sock');
  });

  it('is where connect() finds the socket and the approver token', async () => {
    const broker = await Broker.start();
    const saved = process.env.CREDBROKER_DATA_DIR;
    try {
      process.env.CREDBROKER_DATA_DIR = broker.dataDir;
      const client = await CredbrokerClient.connect();
      try {
        assert.equal(client.address, broker.address);
        assert.ok((await client.listProviders()).providers.length > 0);
      } finally {
        client.close();
      }
    } finally {
      if (saved === undefined) delete process.env.CREDBROKER_DATA_DIR;
      else process.env.CREDBROKER_DATA_DIR = saved;
      await broker.dispose();
    }
  });
});
