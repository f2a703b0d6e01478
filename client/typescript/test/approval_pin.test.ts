// Approvals with the human-presence factor on (the broker's default): the
// approval PIN set with SetApprovalPin must come with every Approve.
import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { CredbrokerClient, isBrokerError } from '../src';
import { AgentProcess } from './support/agent';
import { Broker } from './support/broker';

// Not a real secret: a test PIN, never printed.
const PIN = '4817-test-pin';

describe('approving with the approval PIN', () => {
  let broker: Broker;
  let client: CredbrokerClient;
  let agent: AgentProcess | undefined;

  before(async () => {
    broker = await Broker.start({ approvalFactor: true });
    client = await CredbrokerClient.connect({ address: broker.address, tokenFile: broker.approverTokenFile });
    await client.putCredential({
      provider: 'aws',
      values: {
        access_key_id: 'AKIAIOSFODNN7EXAMPLE',
        secret_access_key: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      },
    });
  });

  after(async () => {
    agent?.kill();
    client?.close();
    await broker?.dispose();
  });

  it('refuses Approve without the PIN and grants it with the PIN', async () => {
    agent = new AgentProcess(broker, { needId: 'n-pin', provider: 'aws', action: 'deploy to AWS' });
    const requestId = (await agent.waitForState('REQUEST_STATE_PENDING_APPROVAL')).requestId!;

    // No PIN set yet: the factor is on, so nothing can be approved.
    await assert.rejects(client.approve({ requestId, scope: 'SCOPE_ONCE' }),
      (e: unknown) => isBrokerError(e) && e.code === 'FAILED_PRECONDITION');

    const set = await client.setApprovalPin({ newPin: PIN });
    assert.equal(set.pinSet, true);
    assert.equal((await client.getApprovalPinStatus()).pinSet, true);

    const refusal = async (pin: string | undefined): Promise<string> => {
      try {
        await client.approve({ requestId, scope: 'SCOPE_ONCE', ...(pin === undefined ? {} : { pin }) });
      } catch (e) {
        assert.ok(isBrokerError(e), String(e));
        assert.ok(!e.message.includes(PIN), 'the error does not echo the PIN');
        return e.code;
      }
      return 'OK';
    };
    assert.ok(['PERMISSION_DENIED', 'FAILED_PRECONDITION'].includes(await refusal(undefined)),
      'Approve without the PIN is refused');
    assert.equal(await refusal('0000-wrong'), 'PERMISSION_DENIED');
    const status = await client.getApprovalPinStatus();
    assert.ok(status.failedAttempts >= 1, 'the wrong PIN counted');
    assert.ok((await client.listPending()).some((r) => r.requestId === requestId), 'still pending');

    const approved = await client.approve({ requestId, scope: 'SCOPE_ONCE', pin: PIN });
    const granted = await agent.waitForState('REQUEST_STATE_GRANTED');
    assert.equal(granted.grant?.grantId, approved.grantId);
    assert.equal((await client.getApprovalPinStatus()).failedAttempts, 0);

    // Changing the PIN needs the current one.
    await assert.rejects(client.setApprovalPin({ currentPin: '0000-wrong', newPin: 'another-pin' }),
      (e: unknown) => isBrokerError(e) && e.code === 'PERMISSION_DENIED');
  });
});
