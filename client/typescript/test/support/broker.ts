// A real credbrokerd for the tests: started on a fresh data directory under
// /tmp/cbts-XXXXXX (so the socket path stays far below 108 bytes), ready
// once it prints "ready", stopped with SIGTERM and restartable on the same
// data directory. The binary is $CREDBROKER_BIN. With a passphrase the store
// is a passphrase store, and startLocked() starts the daemon without it.
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';

// The store's key in a file beside it: no passphrase to type.
const BASE_FLAGS = ['--key_source=file'];
// No human-presence factor: approvals need only the approver token.
const NO_FACTOR_FLAGS = ['--approval_factor=none'];

// Daemons still running when this process ends (a test timed out, the
// runner sent SIGTERM) are killed with it, and their directories removed,
// rather than left behind.
const running = new Set<ChildProcess>();
const roots = new Set<string>();
let exitHooked = false;

function killLeftovers(): void {
  for (const proc of running) proc.kill('SIGKILL');
  running.clear();
  for (const root of roots) rmSync(root, { recursive: true, force: true });
  roots.clear();
}

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', killLeftovers);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      killLeftovers();
      process.kill(process.pid, signal);
    });
  }
}

export function brokerBinary(): string {
  const bin = process.env.CREDBROKER_BIN;
  if (bin === undefined || bin === '') {
    throw new Error('set CREDBROKER_BIN to the credbrokerd binary (e.g. build/ci/broker/credbrokerd)');
  }
  if (!existsSync(bin)) throw new Error(`CREDBROKER_BIN=${bin} does not exist`);
  return bin;
}

export interface BrokerOptions {
  // Whether approvals need the human-presence factor (an approval PIN).
  // Default false: --approval_factor=none.
  approvalFactor?: boolean;
  // Also listen on 127.0.0.1 (a free port), with TLS.
  tcp?: boolean;
  extraArgs?: string[];
  // A passphrase store (no --key_source=file): created at start() with this
  // passphrase on stdin (--passphrase_fd 0).
  passphrase?: string;
}

export class Broker {
  readonly root: string;
  readonly dataDir: string;
  readonly address: string;
  readonly approverTokenFile: string;
  readonly agentTokenFile: string;
  readonly #args: string[];
  readonly #passphrase: string | undefined;
  #stdoutLines: string[] = [];
  #lineWaiters: Array<() => void> = [];
  #proc: ChildProcess | undefined;
  #stderr = '';
  #tcpAddress: string | undefined;

  private constructor(options: BrokerOptions) {
    this.root = mkdtempSync('/tmp/cbts-');
    roots.add(this.root);
    this.dataDir = path.join(this.root, 'data');
    this.address = `unix:${path.join(this.dataDir, 'broker.sock')}`;
    this.approverTokenFile = path.join(this.dataDir, 'approver.token');
    this.agentTokenFile = path.join(this.dataDir, 'agent.token');
    this.#passphrase = options.passphrase;
    this.#args = [
      '--data_dir', this.dataDir,
      ...(options.passphrase === undefined ? BASE_FLAGS : []),
      ...(options.approvalFactor === true ? [] : NO_FACTOR_FLAGS),
      ...(options.tcp === true ? ['--listen', `${this.address},127.0.0.1:0`] : []),
      ...(options.extraArgs ?? []),
    ];
  }

  static async start(options: BrokerOptions = {}): Promise<Broker> {
    const broker = new Broker(options);
    try {
      await broker.startAgain();
    } catch (e) {
      broker.cleanup();
      throw e;
    }
    return broker;
  }

  // The approver token, for tests that build their own token files.
  approverToken(): string {
    return readFileSync(this.approverTokenFile, 'utf8').trim();
  }

  // "127.0.0.1:PORT" of a broker started with tcp: true.
  get tcpAddress(): string {
    if (this.#tcpAddress === undefined) throw new Error('credbrokerd listens on no TCP port');
    return this.#tcpAddress;
  }

  get running(): boolean {
    return this.#proc !== undefined;
  }

  // Starts the daemon (again, on the same data directory) and waits for
  // "ready" on its stdout. A passphrase store gets its passphrase on stdin.
  startAgain(timeoutMs = 30_000): Promise<void> {
    return this.#spawn(timeoutMs, this.#passphrase !== undefined);
  }

  // Starts a passphrase store's daemon LOCKED: no --passphrase_fd, stdin
  // /dev/null and no controlling terminal (its own session), so that it
  // serves only LockService until unlocked. Resolves at its first "ready".
  startLocked(timeoutMs = 30_000): Promise<void> {
    if (this.#passphrase === undefined) throw new Error('startLocked() needs a passphrase store');
    return this.#spawn(timeoutMs, false);
  }

  // Resolves when the daemon has printed a line matching `re` (since its
  // last start), e.g. the second "ready" after an unlock.
  async waitForLine(re: RegExp, count = 1, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#stdoutLines.filter((l) => re.test(l)).length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`credbrokerd printed no ${re} (x${count}) within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#lineWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  #spawn(timeoutMs: number, passphraseOnStdin: boolean): Promise<void> {
    if (this.#proc !== undefined) throw new Error('credbrokerd is already running');
    this.#stderr = '';
    this.#stdoutLines = [];
    hookExit();
    const args = passphraseOnStdin ? [...this.#args, '--passphrase_fd', '0'] : this.#args;
    const proc = spawn(brokerBinary(), args, {
      stdio: [passphraseOnStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      // Without a passphrase: a session of its own, hence no /dev/tty to
      // ask on.
      detached: this.#passphrase !== undefined && !passphraseOnStdin,
    });
    if (passphraseOnStdin) proc.stdin!.end(`${this.#passphrase}\n`);
    this.#proc = proc;
    running.add(proc);
    proc.once('exit', () => running.delete(proc));
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-20_000);
    });
    return new Promise<void>((resolve, reject) => {
      const fail = (why: string): void => {
        clearTimeout(timer);
        reject(new Error(`credbrokerd ${why}; stderr:\n${this.#stderr}`));
      };
      const timer = setTimeout(() => {
        fail(`did not print "ready" within ${timeoutMs} ms`);
        proc.kill('SIGKILL');
      }, timeoutMs);
      const lines = createInterface({ input: proc.stdout! });
      lines.on('line', (line) => {
        this.#stdoutLines.push(line);
        for (const w of this.#lineWaiters.splice(0)) w();
        const tcp = /^credbrokerd is serving on .*\b(127\.0\.0\.1:\d+)/.exec(line);
        if (tcp !== null) this.#tcpAddress = tcp[1];
        if (line.trim() === 'ready') {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code, signal) => {
        if (this.#proc === proc) this.#proc = undefined;
        fail(`exited (code ${code}, signal ${signal}) before it was ready`);
      });
      proc.once('error', (e) => fail(`could not start: ${e.message}`));
    });
  }

  // SIGTERM, then SIGKILL after timeoutMs; resolves once it has exited.
  async stop(timeoutMs = 15_000): Promise<void> {
    const proc = this.#proc;
    if (proc === undefined) return;
    this.#proc = undefined;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      proc.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      proc.kill('SIGTERM');
    });
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.startAgain();
  }

  stderr(): string {
    return this.#stderr;
  }

  cleanup(): void {
    roots.delete(this.root);
    rmSync(this.root, { recursive: true, force: true });
  }

  async dispose(): Promise<void> {
    await this.stop();
    this.cleanup();
  }
}
