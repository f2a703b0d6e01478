// A broker whose passphrase store started without its passphrase (no
// terminal, no --passphrase_fd) is LOCKED: GetLockState says so, other calls
// fail FAILED_PRECONDITION, a watch waits with 'locked' items, a wrong
// passphrase is PERMISSION_DENIED, and after Unlock the broker restarts its
// listeners and every call works on the same client.
import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { CredbrokerClient, isStoreLocked } from '../src';
import { Broker } from './support/broker';
import { expectBrokerError } from './support/errors';
import { WatchReader, summary } from './support/watch';

// A test store's passphrase; never printed.
const PASSPHRASE = 'correct horse battery staple 42';

// Retries `call` while the broker restarts its listeners; the last error
// when it never succeeds within timeoutMs.
async function eventually<T>(call: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await call();
    } catch (e) {
      if (Date.now() >= deadline) throw e;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

describe('a locked broker', () => {
  let broker: Broker;
  let client: CredbrokerClient;

  before(async () => {
    // Created with the passphrase on stdin, then started without it.
    broker = await Broker.start({ passphrase: PASSPHRASE });
    await broker.stop();
    await broker.startLocked();
    client = await CredbrokerClient.connect({ dataDir: broker.dataDir, timeoutMs: 10_000 });
  });

  after(async () => {
    client?.close();
    await broker?.dispose();
  });

  it('says it is locked, refuses other calls and unlocks with the right passphrase only', async () => {
    const state = await client.getLockState();
    assert.equal(state.locked, true);
    assert.match(state.message, /unlock/);
    assert.equal(await client.checkHealth(), 'SERVING');

    const refused = await expectBrokerError(client.listCredentials(), 'FAILED_PRECONDITION');
    assert.ok(isStoreLocked(refused), `names the lock: ${refused.message}`);
    assert.match(refused.message, /credctl unlock/);

    // A watch waits: 'locked' items, retried, not an end.
    const stop = new AbortController();
    const reader = new WatchReader(client.watchRequests({
      signal: stop.signal, initialBackoffMs: 100, maxLockedBackoffMs: 300 }));
    try {
      const first = await reader.next((i) => i.type === 'locked', 'a locked item');
      assert.ok(first.type === 'locked' && /locked/.test(first.message));
      assert.ok(first.retryInMs <= 300, `retried within the locked cap: ${first.retryInMs}`);
      await reader.next((i) => i.type === 'locked' && i.attempt >= 3, 'a third locked attempt');
      assert.equal(reader.ended, false, 'the watch goes on while locked');

      const wrong = await expectBrokerError(client.unlock('not the passphrase'), 'PERMISSION_DENIED');
      assert.doesNotMatch(wrong.message, /not the passphrase/, 'the message does not echo it');
      assert.equal((await client.getLockState()).locked, true, 'still locked');

      const r = await client.unlock(PASSPHRASE);
      assert.equal(r.unlockedNow, true);
      await broker.waitForLine(/^credbrokerd: unlocked$/);
      await broker.waitForLine(/^ready$/, 2);

      // The same client, once the listeners are back.
      const list = await eventually(() => client.listCredentials());
      assert.deepEqual(list.credentials, []);
      const after = await eventually(() => client.getLockState());
      assert.equal(after.locked, false);
      // The watch reconnects by itself, soon (its backoff starts afresh
      // after the locked spell), and gets the (empty) snapshot.
      await reader.next((i) => i.type === 'connected', 'connected after the unlock', 5_000);
      await reader.nextEvent('KIND_SNAPSHOT_DONE');
      assert.equal(reader.error, undefined, summary(reader.items));
      assert.equal((await client.unlock(PASSPHRASE)).unlockedNow, false, 'already unlocked');
    } finally {
      stop.abort();
      await reader.done;
    }
  });
});
