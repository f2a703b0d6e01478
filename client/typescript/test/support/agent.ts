// Runs agent_main.js as a child process and reads its updates.
import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { createInterface } from 'node:readline';

import type { CredentialNeededInput } from '../../src';
import type { Broker } from './broker';

export interface AgentGrant {
  grantId: string;
  provider: string;
  profile: string;
  credentialVersion: number;
  scope: string;
  requestId: string;
  // Field name to the SHA-256 of its value.
  valueDigests: Record<string, string>;
}

export interface AgentUpdate {
  needId?: string;
  requestId?: string;
  state?: string;
  missingFields?: string[];
  reason?: string;
  message?: string;
  grant?: AgentGrant | null;
  error?: { code: string; message: string };
}

export class AgentProcess {
  readonly #proc: ChildProcess;
  readonly #updates: AgentUpdate[] = [];
  #waiters: Array<() => void> = [];
  #exited = false;

  constructor(broker: Broker, need: CredentialNeededInput, sessionKey = '') {
    this.#proc = spawn(process.execPath, [path.join(__dirname, 'agent_main.js')], {
      stdio: ['ignore', 'pipe', 'inherit'],
      // A session of its own, as an agent in another terminal: the broker
      // refuses an approver in the agent's session (this test's process).
      detached: true,
      env: {
        ...process.env,
        CB_ADDRESS: broker.address,
        CB_TOKEN_FILE: broker.agentTokenFile,
        CB_NEED: JSON.stringify(need),
        CB_SESSION_KEY: sessionKey,
      },
    });
    createInterface({ input: this.#proc.stdout! }).on('line', (line) => {
      this.#updates.push(JSON.parse(line) as AgentUpdate);
      this.#wake();
    });
    this.#proc.once('exit', () => {
      this.#exited = true;
      this.#wake();
    });
  }

  get pid(): number | undefined {
    return this.#proc.pid;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  // The first update (in order, from the start) that matches; rejects
  // after timeoutMs or when the agent exits without one.
  async waitFor(match: (u: AgentUpdate) => boolean, what: string, timeoutMs = 20_000): Promise<AgentUpdate> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.#updates.find(match);
      if (found !== undefined) return found;
      if (this.#exited) {
        throw new Error(`the agent exited before ${what}; its updates: ${JSON.stringify(this.#updates)}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; updates: ${JSON.stringify(this.#updates)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  waitForState(state: string, timeoutMs?: number): Promise<AgentUpdate> {
    return this.waitFor((u) => u.state === state, state, timeoutMs);
  }

  updates(): AgentUpdate[] {
    return [...this.#updates];
  }

  // Resolves with the exit code once the agent has exited.
  exited(): Promise<number | null> {
    if (this.#exited) return Promise.resolve(this.#proc.exitCode);
    return new Promise((resolve) => this.#proc.once('exit', (code) => resolve(code)));
  }

  kill(): void {
    if (!this.#exited) this.#proc.kill('SIGKILL');
  }
}
