// The approver's flow against a real credbrokerd: an agent in another
// process asks, watchRequests shows it, Approve grants it or Deny refuses it,
// and the watch survives the broker restarting.
import * as assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';

import { CredbrokerClient, durationFromMs, isBrokerError } from '../src';
import type { WatchItem } from '../src';
import { AgentProcess } from './support/agent';
import { digest } from './support/agent_main';
import { Broker } from './support/broker';
import { WatchReader, summary } from './support/watch';

const AWS_VALUES = {
  access_key_id: 'AKIAIOSFODNN7EXAMPLE',
  secret_access_key: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  region: 'us-east-1',
};

const isConnected = (i: WatchItem): boolean => i.type === 'connected';

function need(needId: string, profile: string) {
  return {
    needId,
    provider: 'aws',
    profile,
    action: 'deploy to AWS in us-east-1',
    context: { region: 'us-east-1' },
  };
}

// While the broker is down: five failed attempts, each reported with the
// next delay, which doubles up to the watch's cap (400 ms here).
async function checkBackoffWhileDown(watch: WatchReader): Promise<void> {
  const drops: WatchItem[] = [];
  for (let i = 0; i < 5; i++) {
    drops.push(await watch.next((x) => x.type === 'disconnected', `disconnection ${i + 1}`));
  }
  const attempts = drops.map((d) => (d.type === 'disconnected' ? d.attempt : 0));
  assert.deepEqual(attempts, [1, 2, 3, 4, 5]);
  for (const d of drops) {
    assert.ok(d.type === 'disconnected');
    assert.equal(d.error.code, 'UNAVAILABLE');
    assert.ok(d.retryInMs > 0 && d.retryInMs <= 400, `retry in ${d.retryInMs} ms is within the cap`);
  }
  const delays = drops.map((d) => (d.type === 'disconnected' ? d.retryInMs : 0));
  for (let i = 0; i < 3; i++) assert.ok(delays[i]! < delays[i + 1]!, `the backoff grows: ${delays}`);
  const last = drops[4]!;
  assert.ok(last.type === 'disconnected' && last.retryInMs >= 320, 'the backoff grew to the cap');
}

describe('approving requests', () => {
  let broker: Broker;
  let client: CredbrokerClient;
  const agents: AgentProcess[] = [];
  const watches: WatchReader[] = [];

  const startAgent = (needId: string, profile: string): AgentProcess => {
    const agent = new AgentProcess(broker, need(needId, profile));
    agents.push(agent);
    return agent;
  };
  const startWatch = async (options = {}): Promise<WatchReader> => {
    const reader = new WatchReader(client.watchRequests(options));
    watches.push(reader);
    await reader.next(isConnected, 'connected');
    await reader.nextEvent('KIND_SNAPSHOT_DONE');
    return reader;
  };

  before(async () => {
    broker = await Broker.start();
    client = await CredbrokerClient.connect({ address: broker.address, tokenFile: broker.approverTokenFile });
  });

  afterEach(async () => {
    for (const a of agents.splice(0)) a.kill();
    for (const w of watches.splice(0)) {
      w.watch.close();
      await w.done;
    }
  });

  after(async () => {
    client?.close();
    await broker?.dispose();
  });

  it('shows an agent\'s need to the watch, and Approve with values grants it to the agent', async () => {
    const watch = await startWatch();
    const agent = startAgent('n-approve', 'flow');
    const asked = await agent.waitForState('REQUEST_STATE_NEEDS_INPUT');
    const requestId = asked.requestId!;
    assert.match(requestId, /^r-/);
    assert.deepEqual([...asked.missingFields!].sort(), ['access_key_id', 'secret_access_key']);

    const added = await watch.nextEvent('KIND_ADDED', requestId);
    assert.ok(added.type === 'event' && added.event.request !== null);
    const request = added.event.request;
    assert.equal(request.state, 'REQUEST_STATE_NEEDS_INPUT');
    assert.equal(request.need?.provider, 'aws');
    assert.equal(request.need?.profile, 'flow');
    assert.equal(request.need?.action, 'deploy to AWS in us-east-1');
    assert.deepEqual(request.need?.context, { region: 'us-east-1' });
    assert.equal(request.agentConnected, true);

    const pending = await client.listPending();
    assert.ok(pending.some((r) => r.requestId === requestId), 'listPending has the request');

    const form = await client.getCredentialForm({ requestId });
    assert.equal(form.provider, 'aws');
    assert.equal(form.request?.requestId, requestId);
    const fields = new Map(form.fields.map((f) => [f.spec?.name, f]));
    assert.equal(fields.get('secret_access_key')?.spec?.sensitive, true);
    assert.equal(fields.get('secret_access_key')?.isSet, false);
    assert.equal(fields.get('access_key_id')?.spec?.sensitive, false);

    const approved = await client.approve({
      requestId, values: AWS_VALUES, scope: 'SCOPE_ONCE', ttl: durationFromMs(15 * 60_000),
    });
    assert.match(approved.grantId, /^g-/);

    const granted = await agent.waitForState('REQUEST_STATE_GRANTED');
    const grant = granted.grant!;
    assert.equal(grant.grantId, approved.grantId);
    assert.equal(grant.provider, 'aws');
    assert.equal(grant.profile, 'flow');
    assert.equal(grant.scope, 'SCOPE_ONCE');
    assert.equal(grant.credentialVersion, 1);
    for (const name of ['access_key_id', 'secret_access_key'] as const) {
      assert.ok(grant.valueDigests[name] === digest(AWS_VALUES[name]), `the agent received ${name} as approved`);
    }
    assert.equal(await agent.exited(), 0);

    const resolved = await watch.nextEvent('KIND_RESOLVED', requestId);
    assert.ok(resolved.type === 'event');
    assert.equal(resolved.event.request?.state, 'REQUEST_STATE_GRANTED');

    const grants = await client.listGrants();
    assert.ok(grants.grants.some((g) => g.grantId === approved.grantId && g.requestId === requestId));
    await client.revokeGrant({ grantId: approved.grantId, reason: 'test done' });
    const ended = await client.listGrants({ includeEnded: true });
    assert.equal(ended.grants.find((g) => g.grantId === approved.grantId)?.revoked, true);
  });

  it('keeps a request pending after Approve with bad values, and Deny sends the reason to the agent', async () => {
    const watch = await startWatch();
    const agent = startAgent('n-deny', 'deny');
    const requestId = (await agent.waitForState('REQUEST_STATE_NEEDS_INPUT')).requestId!;
    await watch.nextEvent('KIND_ADDED', requestId);

    let refused: unknown;
    try {
      await client.approve({ requestId, values: { access_key_id: 'nope', secret_access_key: 'x' }, scope: 'SCOPE_ONCE' });
    } catch (e) {
      refused = e;
    }
    assert.ok(isBrokerError(refused), 'Approve with bad values fails');
    assert.equal(refused.code, 'INVALID_ARGUMENT');
    const violated = refused.fieldViolations.map((v) => v.field).join(' ');
    assert.match(violated, /access_key_id/);
    assert.match(violated, /secret_access_key/);
    assert.ok((await client.listPending()).some((r) => r.requestId === requestId), 'still pending');

    await client.deny({ requestId, reason: 'use the staging account' });
    const denied = await agent.waitForState('REQUEST_STATE_DENIED');
    assert.match(denied.reason!, /use the staging account/);
    const resolved = await watch.nextEvent('KIND_RESOLVED', requestId);
    assert.ok(resolved.type === 'event');
    assert.equal(resolved.event.request?.state, 'REQUEST_STATE_DENIED');
    assert.match(resolved.event.request?.decision ?? '', /use the staging account/);

    // The first decision wins.
    await assert.rejects(client.approve({ requestId, scope: 'SCOPE_ONCE' }),
      (e: unknown) => isBrokerError(e) && e.code === 'FAILED_PRECONDITION');
  });

  it('reconnects with capped backoff while the broker is down and re-reads the snapshot after its restart', async () => {
    const watch = await startWatch({ initialBackoffMs: 50, maxBackoffMs: 400 });
    const before = startAgent('n-restart', 'restart');
    const requestId = (await before.waitForState('REQUEST_STATE_NEEDS_INPUT')).requestId!;
    await watch.nextEvent('KIND_ADDED', requestId);

    await broker.stop();
    try {
      await checkBackoffWhileDown(watch);
    } finally {
      if (!broker.running) await broker.startAgain();
    }
    await watch.next(isConnected, 'connected after the restart');
    const snapshot: string[] = [];
    for (;;) {
      const item = await watch.next((x) => x.type === 'event', 'the new snapshot');
      assert.ok(item.type === 'event');
      if (item.event.kind === 'KIND_SNAPSHOT_DONE') break;
      assert.equal(item.event.kind, 'KIND_SNAPSHOT', summary(watch.items));
      snapshot.push(item.event.request!.requestId);
    }
    assert.ok(snapshot.includes(requestId), `the request pending before the restart is in the new snapshot ${snapshot}`);

    // Live events flow on the new stream.
    const afterRestart = startAgent('n-after', 'restart2');
    const newId = (await afterRestart.waitForState('REQUEST_STATE_NEEDS_INPUT')).requestId!;
    await watch.nextEvent('KIND_ADDED', newId);
    await client.deny({ requestId: newId, reason: 'done' });
    await watch.nextEvent('KIND_RESOLVED', newId);
  });

  it('reopens a watch stream whose deadline passed without reporting a disconnection', async () => {
    const watch = await startWatch({ streamDeadlineMs: 1_500 });
    const first = watch.items.findIndex(isConnected);
    await watch.next(isConnected, 'the reopened stream', 10_000);
    await watch.nextEvent('KIND_SNAPSHOT_DONE');
    assert.ok(!watch.items.slice(first).some((i) => i.type === 'disconnected'), summary(watch.items));
  });

  it('ends a watch when its signal aborts, when closed, and when the loop breaks', async () => {
    const controller = new AbortController();
    const aborted = await startWatch({ signal: controller.signal });
    controller.abort();
    await aborted.done;
    assert.equal(aborted.error, undefined);
    assert.ok(aborted.ended);

    const closed = new WatchReader(client.watchRequests());
    setTimeout(() => closed.watch.close(), 200);
    await closed.done;
    assert.equal(closed.error, undefined);

    let seen = 0;
    const watch = client.watchRequests();
    for await (const item of watch) {
      assert.ok(++seen < 100, 'the snapshot ends');
      if (item.type === 'event' && item.event.kind === 'KIND_SNAPSHOT_DONE') break;
    }
    assert.ok(seen >= 2);
    assert.deepEqual(await watch.next(), { done: true, value: undefined });

    const preAborted = client.watchRequests({ signal: AbortSignal.abort() });
    assert.deepEqual(await preAborted.next(), { done: true, value: undefined });

    // Closing the client ends its watches.
    const other = await CredbrokerClient.connect({ address: broker.address, tokenFile: broker.approverTokenFile });
    const orphan = new WatchReader(other.watchRequests({ initialBackoffMs: 10 }));
    await orphan.nextEvent('KIND_SNAPSHOT_DONE');
    other.close();
    await orphan.done;
    assert.equal(orphan.error, undefined);
    assert.ok(!orphan.items.some((i) => i.type === 'disconnected'), summary(orphan.items));
  });

  it('throws from the iterator what retrying cannot fix', async () => {
    const wrong = await CredbrokerClient.connect({ address: broker.address, token: 'wrong-token' });
    try {
      const reader = new WatchReader(wrong.watchRequests({ initialBackoffMs: 10 }));
      await reader.done;
      assert.ok(isBrokerError(reader.error), String(reader.error));
      assert.equal(reader.error.code, 'UNAUTHENTICATED');
    } finally {
      wrong.close();
    }
  });
});
