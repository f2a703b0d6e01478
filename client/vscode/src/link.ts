// BrokerLink: the extension's one connection to the broker. It connects
// (retrying while the broker is not running), waits while the broker's
// store is locked (unlock() opens it), keeps the pending requests from
// ApprovalService.WatchRequests, and says what changed. No VS Code
// import: extension.ts turns its events into notifications and status.
//
// Thread of control: one async loop per start(); stop() ends it.
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';

import type { ApprovalEvent, ApprovalRequest, BrokerError, CredentialSummary } from '@credbroker/client';
import { CredbrokerClient, isBrokerError } from '@credbroker/client';

import type { Resolved } from './config';

export type LinkState =
  | { kind: 'connecting'; address: string }
  | { kind: 'connected'; address: string }
  // The broker is not there (no token file yet, or nothing listening).
  | { kind: 'down'; address: string; reason: string; code: string }
  // It answered but refused us (a wrong token): retried less often.
  | { kind: 'refused'; address: string; reason: string; code: string }
  // It runs but its store is locked (started without its passphrase):
  // nothing but unlock() is attempted until it is unlocked.
  | { kind: 'locked'; address: string; message: string }
  | { kind: 'stopped'; address: string };

export interface LinkEvents {
  state: [LinkState];
  pending: [ApprovalRequest[]];
  // A request that this link had not seen before (a live ADDED, or one in
  // the first snapshot).
  added: [ApprovalRequest, { fromSnapshot: boolean }];
  // Resolved, cancelled or expired (or gone from a new snapshot).
  ended: [string, string];
  rotationDue: [CredentialSummary | null, string];
}

const RETRY_MS = 2_000;
const REFUSED_RETRY_MS = 15_000;
// How often a locked broker is asked whether it still is (credctl unlock
// may open it too).
const LOCKED_POLL_MS = 2_000;
// After an unlock the broker restarts its listeners: for this long an
// unreachable broker is "connecting", polled every UNLOCKING_POLL_MS.
const UNLOCKING_GRACE_MS = 15_000;
const UNLOCKING_POLL_MS = 250;

// Which token file the client read: a broker set up again (a new store,
// new tokens) is retried at once rather than as a refusal.
async function tokenStamp(file: string): Promise<string> {
  try {
    const st = await fs.stat(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return '';
  }
}

function describe(e: unknown): { reason: string; code: string } {
  if (isBrokerError(e)) return { reason: e.message, code: e.code };
  return { reason: e instanceof Error ? e.message : String(e), code: 'UNKNOWN' };
}

export class BrokerLink extends EventEmitter<LinkEvents> {
  #resolved: Resolved | undefined;
  #client: CredbrokerClient | undefined;
  #abort: AbortController | undefined;
  #state: LinkState = { kind: 'stopped', address: '' };
  #pending = new Map<string, ApprovalRequest>();
  #seen = new Set<string>();
  #generation = 0;
  #wake: (() => void) | undefined;
  #unlockingUntil = 0;

  get state(): LinkState {
    return this.#state;
  }

  get client(): CredbrokerClient | undefined {
    return this.#state.kind === 'connected' ? this.#client : undefined;
  }

  get pending(): ApprovalRequest[] {
    return [...this.#pending.values()].sort((a, b) =>
      (a.createdAt?.seconds ?? 0) - (b.createdAt?.seconds ?? 0));
  }

  // (Re)starts the loop with these settings.
  start(resolved: Resolved): void {
    this.stop();
    this.#resolved = resolved;
    const generation = ++this.#generation;
    this.#abort = new AbortController();
    void this.#run(generation, this.#abort.signal);
  }

  // Opens the locked store with its passphrase (kept for this call only),
  // then reconnects. Rejects with the broker's error: PERMISSION_DENIED for
  // a wrong passphrase, RESOURCE_EXHAUSTED after too many; with a plain
  // Error when there is no broker to ask.
  async unlock(passphrase: string): Promise<void> {
    const client = this.#client;
    if (client === undefined) throw new Error('the broker is not connected');
    await client.unlock(passphrase, { timeoutMs: 60_000 });
    this.#unlockingUntil = Date.now() + UNLOCKING_GRACE_MS;
    if (this.#state.kind === 'locked') {
      this.#setState({ kind: 'connecting', address: this.#state.address });
    }
    this.poke();
  }

  // Retry now rather than at the next tick (e.g. after starting the broker).
  poke(): void {
    this.#wake?.();
  }

  stop(): void {
    this.#generation++;
    this.#abort?.abort();
    this.#abort = undefined;
    this.#client?.close();
    this.#client = undefined;
    this.#wake?.();
    if (this.#pending.size > 0) {
      this.#pending.clear();
      this.emit('pending', []);
    }
    this.#setState({ kind: 'stopped', address: this.#resolved?.address ?? '' });
  }

  #setState(s: LinkState): void {
    const old = this.#state;
    this.#state = s;
    if (old.kind !== s.kind || JSON.stringify(old) !== JSON.stringify(s)) this.emit('state', s);
  }

  #sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.#wake = done;
    });
  }

  async #run(generation: number, signal: AbortSignal): Promise<void> {
    const r = this.#resolved!;
    const live = (): boolean => generation === this.#generation && !signal.aborted;
    this.#setState({ kind: 'connecting', address: r.address });
    while (live()) {
      let client: CredbrokerClient;
      const stamp = await tokenStamp(r.tokenFile);
      try {
        client = await CredbrokerClient.connect(r.options);
      } catch (e) {
        if (!live()) return;
        this.#setState({ kind: 'down', address: r.address, ...describe(e) });
        await this.#sleep(RETRY_MS, signal);
        continue;
      }
      if (!live()) {
        client.close();
        return;
      }
      this.#client = client;
      let retryIn = RETRY_MS;
      try {
        // A store locked again (a broker restarted without its passphrase)
        // sends the link back to waiting for an unlock.
        while (live() && await this.#untilUnlocked(client, signal, live)) {
          if (await this.#watch(client, signal, live) !== 'locked') break;
        }
      } catch (e) {
        // What retrying the stream cannot fix: a wrong token, a broker
        // without the service.
        if (!live()) return;
        if (isBrokerError(e) && e.code === 'UNAUTHENTICATED' && await tokenStamp(r.tokenFile) !== stamp) {
          retryIn = 0;  // A new token file: connect again with it.
        } else {
          this.#setState({ kind: 'refused', address: r.address, ...describe(e) });
          retryIn = REFUSED_RETRY_MS;
        }
      } finally {
        client.close();
        if (this.#client === client) this.#client = undefined;
      }
      if (!live()) return;
      this.#clearPending();
      await this.#sleep(retryIn, signal);
    }
  }

  // Resolves true once the store is unlocked (or the broker predates
  // LockService), false when the broker cannot be reached (the caller
  // reconnects); throws what retrying cannot fix (a wrong token). Polls
  // while it is locked.
  async #untilUnlocked(client: CredbrokerClient, signal: AbortSignal, live: () => boolean): Promise<boolean> {
    const r = this.#resolved!;
    while (live()) {
      let state;
      try {
        state = await client.getLockState({ timeoutMs: 5_000, signal });
      } catch (e) {
        if (!live()) return false;
        if (isBrokerError(e) && e.code === 'UNIMPLEMENTED') return true;
        if (isBrokerError(e) && (e.code === 'UNAUTHENTICATED' || e.code === 'PERMISSION_DENIED')) throw e;
        if (Date.now() < this.#unlockingUntil) {
          await this.#sleep(UNLOCKING_POLL_MS, signal);
          continue;
        }
        this.#setState({ kind: 'down', address: r.address, ...describe(e) });
        return false;
      }
      if (!state.locked) return true;
      this.#clearPending();
      this.#setState({ kind: 'locked', address: r.address, message: state.message });
      await this.#sleep(Date.now() < this.#unlockingUntil ? UNLOCKING_POLL_MS : LOCKED_POLL_MS, signal);
    }
    return false;
  }

  // Follows the watch until it ends ('ended') or the store turns out to be
  // locked ('locked').
  async #watch(client: CredbrokerClient, signal: AbortSignal, live: () => boolean): Promise<'ended' | 'locked'> {
    const r = this.#resolved!;
    let snapshot: Map<string, ApprovalRequest> | undefined;
    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const watch = client.watchRequests({ signal: stop.signal, initialBackoffMs: 250, maxBackoffMs: RETRY_MS });
    try {
      for await (const item of watch) {
        if (!live()) return 'ended';
        if (item.type === 'connected') {
          this.#unlockingUntil = 0;
          snapshot = new Map();
          continue;
        }
        if (item.type === 'locked') return 'locked';
        if (item.type === 'disconnected') {
          this.#setState(Date.now() < this.#unlockingUntil
            ? { kind: 'connecting', address: r.address }
            : { kind: 'down', address: r.address, ...describe(item.error) });
          snapshot = undefined;
          continue;
        }
        this.#onEvent(item.event, snapshot, (s) => { snapshot = s; });
      }
      return 'ended';
    } finally {
      signal.removeEventListener('abort', onAbort);
      stop.abort();
    }
  }

  #onEvent(e: ApprovalEvent, snapshot: Map<string, ApprovalRequest> | undefined,
           setSnapshot: (s: Map<string, ApprovalRequest> | undefined) => void): void {
    const req = e.request;
    switch (e.kind) {
      case 'KIND_SNAPSHOT':
        if (req !== null) snapshot?.set(req.requestId, req);
        return;
      case 'KIND_SNAPSHOT_DONE':
        setSnapshot(undefined);
        this.#applySnapshot(snapshot ?? new Map<string, ApprovalRequest>());
        return;
      case 'KIND_ADDED':
        if (req === null) return;
        this.#pending.set(req.requestId, req);
        this.emit('pending', this.pending);
        if (!this.#seen.has(req.requestId)) {
          this.#seen.add(req.requestId);
          this.emit('added', req, { fromSnapshot: false });
        }
        return;
      case 'KIND_RESOLVED':
      case 'KIND_CANCELLED':
      case 'KIND_EXPIRED':
        if (req !== null) this.#onEnded(e, req);
        return;
      case 'KIND_AGENT_DISCONNECTED':
      case 'KIND_AGENT_RECONNECTED':
        if (req !== null && this.#pending.has(req.requestId)) {
          this.#pending.set(req.requestId, req);
          this.emit('pending', this.pending);
        }
        return;
      case 'KIND_ROTATION_DUE':
        this.emit('rotationDue', e.credential, e.message);
        return;
      default:
        return;
    }
  }

  // A complete snapshot: what is no longer in it ended, what this link had
  // not seen is announced, and the link is connected.
  #applySnapshot(next: Map<string, ApprovalRequest>): void {
    for (const id of [...this.#pending.keys()]) {
      if (!next.has(id)) {
        this.#pending.delete(id);
        this.emit('ended', id, 'This request is no longer pending.');
      }
    }
    const fresh: ApprovalRequest[] = [];
    for (const [id, q] of next) {
      this.#pending.set(id, q);
      if (!this.#seen.has(id)) fresh.push(q);
      this.#seen.add(id);
    }
    this.#setState({ kind: 'connected', address: this.#resolved!.address });
    this.emit('pending', this.pending);
    for (const q of fresh) this.emit('added', q, { fromSnapshot: true });
  }

  // A request resolved, cancelled or expired: no longer pending, with why.
  #onEnded(e: ApprovalEvent, req: ApprovalRequest): void {
    this.#pending.delete(req.requestId);
    this.emit('pending', this.pending);
    const how = e.kind === 'KIND_RESOLVED'
      ? `This request was decided${req.decision !== '' ? `: ${req.decision}` : ''}.`
      : e.kind === 'KIND_EXPIRED'
        ? 'This request expired before a decision.'
        : 'The agent cancelled this request (or did not come back in time).';
    this.emit('ended', req.requestId, e.message !== '' ? `${how} ${e.message}` : how);
  }

  #clearPending(): void {
    if (this.#pending.size === 0) return;
    this.#pending.clear();
    this.emit('pending', []);
  }
}

export type { BrokerError };
