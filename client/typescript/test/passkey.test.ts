// The passkey calls through the client package, against a real broker: a
// registration challenge the browser can use, an empty list, and removal
// and registration refused without the PIN. (The ceremonies themselves run
// in Chromium: client/vscode/test/passkey.test.mjs.)
import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { CredbrokerClient, isBrokerError } from '../src';
import { Broker } from './support/broker';

const PIN = '5521-test-pin';
const ORIGIN = 'http://localhost:47913';

describe('passkeys', () => {
  let broker: Broker;
  let client: CredbrokerClient;

  before(async () => {
    broker = await Broker.start({ approvalFactor: true, extraArgs: [`--passkey_origins=${ORIGIN}`] });
    client = await CredbrokerClient.connect({ address: broker.address, tokenFile: broker.approverTokenFile });
    await client.setApprovalPin({ newPin: PIN });
  });

  after(async () => {
    client?.close();
    await broker?.dispose();
  });

  it('hands out a registration challenge for the RP ID localhost and the allowed origins', async () => {
    const c = await client.beginPasskeyRegistration();
    assert.equal(c.challenge.length, 32);
    assert.equal(c.rpId, 'localhost');
    assert.deepEqual(c.origins, [ORIGIN]);
    assert.equal(c.userHandle.length, 16);
    assert.ok(c.expires !== null);
    const again = await client.beginPasskeyRegistration();
    assert.notDeepEqual(again.challenge, c.challenge, 'each challenge is new');
  });

  it('lists no passkey and says the PIN still suffices', async () => {
    const list = await client.listPasskeys();
    assert.deepEqual(list.passkeys, []);
    assert.equal(list.required, false);
    assert.equal((await client.getApprovalPinStatus()).passkeyRequired, false);
  });

  it('refuses a registration without the PIN, and one that answers no challenge', async () => {
    const code = async (p: Promise<unknown>): Promise<string> =>
      p.then(() => 'OK', (e: unknown) => (isBrokerError(e) ? e.code : String(e)));
    assert.equal(await code(client.finishPasskeyRegistration({ name: 'k', clientDataJson: Buffer.from('{}') })),
      'PERMISSION_DENIED');
    assert.equal(await code(client.finishPasskeyRegistration({
      pin: PIN, name: 'k', clientDataJson: Buffer.from('{"type":"webauthn.create","challenge":"AAAA"}'),
    })), 'PERMISSION_DENIED');
    assert.equal(await code(client.removePasskey({ all: true, pin: '0000-wrong' })), 'PERMISSION_DENIED');
  });
});
