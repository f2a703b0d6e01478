// A deployment agent in its own process (the broker refuses an approval from
// the agent's own process or one it runs under): asks for the credential in
// $CB_NEED (JSON) with AgentClient and prints each update as one JSON line.
// A grant's values are printed only as a SHA-256 of each, never themselves.
import { createHash } from 'node:crypto';

import { AgentClient, isBrokerError } from '../../src';
import type { NeedUpdate } from '../../src';

export function digest(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

function describe(u: NeedUpdate): Record<string, unknown> {
  const g = u.grant;
  return {
    needId: u.needId,
    requestId: u.requestId,
    state: u.state,
    missingFields: u.missingFields,
    reason: u.reason,
    message: u.message,
    grant: g === null ? null : {
      grantId: g.grantId,
      provider: g.provider,
      profile: g.profile,
      credentialVersion: g.credentialVersion,
      scope: g.scope,
      requestId: g.requestId,
      valueDigests: Object.fromEntries(Object.entries(g.values).map(([k, v]) => [k, digest(v)])),
    },
  };
}

async function main(): Promise<void> {
  const agent = await AgentClient.connect({
    address: process.env.CB_ADDRESS,
    tokenFile: process.env.CB_TOKEN_FILE,
  });
  try {
    for await (const u of agent.requestCredential(JSON.parse(process.env.CB_NEED ?? '{}'),
                                                  { sessionKey: process.env.CB_SESSION_KEY })) {
      process.stdout.write(`${JSON.stringify(describe(u))}\n`);
    }
  } catch (e) {
    const error = isBrokerError(e) ? { code: e.code, message: e.message } : { code: 'UNKNOWN', message: String(e) };
    process.stdout.write(`${JSON.stringify({ error })}\n`);
    process.exitCode = 2;
  } finally {
    agent.close();
  }
}

if (require.main === module) void main();
