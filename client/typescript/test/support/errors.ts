// Assertions on the errors the client raises.
import * as assert from 'node:assert/strict';

import { BrokerError, isBrokerError } from '../../src';

// Rejects unless `promise` fails with a BrokerError of `code`; returns it.
export async function expectBrokerError(
  promise: Promise<unknown>,
  code: string,
): Promise<BrokerError> {
  try {
    await promise;
  } catch (e) {
    assert.ok(isBrokerError(e), `expected a BrokerError, got ${String(e)}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    return e;
  }
  assert.fail(`expected ${code}, the call succeeded`);
}
