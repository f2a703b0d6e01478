// A real credbrokerd for a test: a temporary data directory, the daemon from
// $CREDBROKER_BIN, and agents run as `$CREDCTL_BIN request`. Shared by the
// webview tests (test/) and the code-server end-to-end test (tests/ide/).
//
// Nothing here prints a secret: an agent's grant (which holds the values)
// is parsed in memory and only compared.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const repo = resolve(new URL('../../../..', import.meta.url).pathname);

export const brokerBin = process.env.CREDBROKER_BIN || join(repo, 'build/ci/broker/credbrokerd');
export const credctlBin = process.env.CREDCTL_BIN || join(repo, 'build/ci/client/cli/credctl');

let helpText;
function brokerHelp() {
  if (helpText === undefined) {
    helpText = '';
    for (const flag of ['--help', '--helpfull']) {
      const r = spawnSync(brokerBin, [flag], { encoding: 'utf8', timeout: 20_000 });
      helpText += `${r.stdout ?? ''}${r.stderr ?? ''}`;
    }
  }
  return helpText;
}

// Whether this credbrokerd has a flag (the human-presence factor's flags
// are new: --key_source, --approval_factor).
export function brokerHasFlag(name) {
  return brokerHelp().includes(`--${name}`);
}

// Starts credbrokerd on a fresh data directory; resolves once it prints
// "ready". The store's key is a key file (--key_source=file), or, with
// `passphrase`, a passphrase given on file descriptor 3. `extraArgs` are
// added to its flags. With `locked`, it starts on the passphrase store in
// `dataDir` without its passphrase, in a session of its own (no terminal to
// ask on): LOCKED.
export async function startBroker({ extraArgs = [], passphrase, locked = false, dataDir: existing,
  timeoutMs = 60_000 } = {}) {
  // A short path: the socket's sun_path must stay under 108 bytes.
  const dataDir = existing ?? mkdtempSync(join(tmpdir(), 'cbide-'));
  const args = ['--data_dir', dataDir];
  if (locked) {
    // Neither a key source nor a passphrase descriptor.
  } else if (passphrase !== undefined) args.push('--key_source=passphrase', '--passphrase_fd=3');
  else if (brokerHasFlag('key_source')) args.push('--key_source=file');
  args.push(...extraArgs);
  const child = spawn(brokerBin, args, {
    stdio: passphrase !== undefined && !locked ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'],
    detached: locked,
    env: { ...process.env, ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=0' },
  });
  if (passphrase !== undefined && !locked) child.stdio[3].end(`${passphrase}\n`);
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
  child.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`credbrokerd not ready in ${timeoutMs} ms: ${err}`)), timeoutMs);
    const check = () => {
      if (/^ready$/m.test(out)) {
        clearTimeout(timer);
        child.stdout.off('data', check);
        ok();
      }
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`credbrokerd exited (${code}) before ready: ${err}`));
    });
  });
  const socket = join(dataDir, 'broker.sock');
  return {
    dataDir,
    socket,
    address: `unix:${socket}`,
    approverToken: join(dataDir, 'approver.token'),
    agentToken: join(dataDir, 'agent.token'),
    pid: child.pid,
    logs: () => err,
    // What it printed on stdout (no secret: it prints none).
    stdout: () => out,
    // Stops the daemon, keeping its data directory.
    async halt() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await new Promise((ok) => {
          const t = setTimeout(() => { child.kill('SIGKILL'); ok(); }, 10_000);
          child.once('exit', () => { clearTimeout(t); ok(); });
        });
      }
    },
    async stop() {
      await this.halt();
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(`${dataDir}-spill`, { recursive: true, force: true });
    },
  };
}

// An agent asking for a credential: `credctl request`. `result` resolves
// when it exits with {code, grant (parsed, never printed), stderr}.
export function agentRequest(broker, provider, action, { profile, context = [], timeoutS = 300 } = {}) {
  const args = ['--broker', broker.address, '--token_file', broker.agentToken, 'request', provider,
    '--action', action, '--timeout', String(timeoutS)];
  if (profile) args.push('--profile', profile);
  for (const kv of context) args.push('--context', kv);
  const started = Date.now();
  // detached: a session of its own, as an agent in another terminal (the
  // broker refuses an approver in the agent's session, this test's).
  const child = spawn(credctlBin, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    env: { ...process.env, ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=0' } });
  let stdout = '';
  let stderr = '';
  let requestId = '';
  const idWaiters = [];
  child.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
  child.stderr.setEncoding('utf8').on('data', (d) => {
    stderr += d;
    const m = /request (r-[0-9a-f]+)/.exec(stderr);
    if (m && requestId === '') {
      requestId = m[1];
      for (const w of idWaiters.splice(0)) w(requestId);
    }
  });
  const result = new Promise((ok) => {
    child.once('exit', (code, signal) => {
      let grant;
      try {
        grant = stdout.trim() === '' ? undefined : JSON.parse(stdout);
      } catch {
        grant = undefined;
      }
      stdout = '';
      ok({ code, signal, grant, stderr });
    });
  });
  return {
    started,
    pid: child.pid,
    result,
    // The broker's request id, once the agent printed it.
    requestId(timeoutMs = 30_000) {
      if (requestId !== '') return Promise.resolve(requestId);
      return new Promise((ok, fail) => {
        const t = setTimeout(() => fail(new Error(`no request id from credctl in ${timeoutMs} ms: ${stderr}`)), timeoutMs);
        idWaiters.push((id) => { clearTimeout(t); ok(id); });
      });
    },
    kill() {
      if (child.exitCode === null) child.kill('SIGTERM');
    },
  };
}

// A timeout for a promise, so that no test waits forever.
export function within(ms, promise, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, fail) => { timer = setTimeout(() => fail(new Error(`timed out after ${ms} ms: ${what}`)), ms); }),
  ]);
}

// A passphrase store, created with `passphrase` (in `dataDir`, else a fresh
// directory), then its daemon started again without it: LOCKED until
// LockService.Unlock (or credctl unlock).
export async function startLockedBroker(passphrase, { extraArgs = [], dataDir } = {}) {
  const first = await startBroker({ passphrase, extraArgs, dataDir });
  await first.halt();
  return startBroker({ dataDir: first.dataDir, locked: true, extraArgs });
}
