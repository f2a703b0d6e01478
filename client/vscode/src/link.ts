// BrokerLink: the extension's one connection to the broker. It connects
// (retrying while the broker is not running), keeps the pending requests
// from ApprovalService.WatchRequests, and says what changed. No VS Code
// import: extension.ts turns its events into notifications and status.
//
// Thread of control: one async loop per start(); stop() ends it.
import { EventEmitter } from 'node:events';

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
        await this.#watch(client, signal, live);
      } catch (e) {
        // What retrying the stream cannot fix: a wrong token, a broker
        // without the service.
        if (!live()) return;
        this.#setState({ kind: 'refused', address: r.address, ...describe(e) });
        retryIn = REFUSED_RETRY_MS;
      } finally {
        client.close();
        if (this.#client === client) this.#client = undefined;
      }
      if (!live()) return;
      this.#clearPending();
      await this.#sleep(retryIn, signal);
    }
  }

  async #watch(client: CredbrokerClient, signal: AbortSignal, live: () => boolean): Promise<void> {
    const r = this.#resolved!;
    let snapshot: Map<string, ApprovalRequest> | undefined;
    const watch = client.watchRequests({ signal, initialBackoffMs: 250, maxBackoffMs: RETRY_MS });
    for await (const item of watch) {
      if (!live()) return;
      if (item.type === 'connected') {
        snapshot = new Map();
        continue;
      }
      if (item.type === 'disconnected') {
        this.#setState({ kind: 'down', address: r.address, ...describe(item.error) });
        snapshot = undefined;
        continue;
      }
      this.#onEvent(item.event, snapshot, (s) => { snapshot = s; });
    }
  }

  #onEvent(e: ApprovalEvent, snapshot: Map<string, ApprovalRequest> | undefined,
           setSnapshot: (s: Map<string, ApprovalRequest> | undefined) => void): void {
    const req = e.request;
    switch (e.kind) {
      case 'KIND_SNAPSHOT':
        if (req !== null) snapshot?.set(req.requestId, req);
        return;
      case 'KIND_SNAPSHOT_DONE': {
        const next = snapshot ?? new Map<string, ApprovalRequest>();
        setSnapshot(undefined);
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
        return;
      }
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
      case 'KIND_EXPIRED': {
        if (req === null) return;
        this.#pending.delete(req.requestId);
        this.emit('pending', this.pending);
        const how = e.kind === 'KIND_RESOLVED'
          ? `This request was decided${req.decision !== '' ? `: ${req.decision}` : ''}.`
          : e.kind === 'KIND_EXPIRED'
            ? 'This request expired before a decision.'
            : 'The agent cancelled this request (or did not come back in time).';
        this.emit('ended', req.requestId, e.message !== '' ? `${how} ${e.message}` : how);
        return;
      }
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

  #clearPending(): void {
    if (this.#pending.size === 0) return;
    this.#pending.clear();
    this.emit('pending', []);
  }
}

export type { BrokerError };
