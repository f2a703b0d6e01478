// RequestWatch: ApprovalService.WatchRequests as an async iterator that
// outlives the stream. When the stream breaks or the broker restarts it
// reconnects with capped exponential backoff and the broker sends its
// snapshot again.
import * as grpc from '@grpc/grpc-js';

import { BrokerError, isStoreLocked } from './errors';
import type { ApprovalEvent } from './generated/credbroker/v1/ApprovalEvent';

// What a watch yields, in order:
//   {type: 'connected'}     a stream is open; a fresh snapshot follows
//                           (KIND_SNAPSHOT per pending request, then
//                           KIND_SNAPSHOT_DONE): rebuild the pending list
//                           from it
//   {type: 'event', event}  one ApprovalEvent
//   {type: 'disconnected'}  the stream broke (or could not be opened); the
//                           next attempt is in retryInMs
//   {type: 'locked'}        the broker's store is locked (it started without
//                           its passphrase): unlock it (unlock(), or
//                           `credctl unlock`); the next attempt is in
//                           retryInMs, at most maxLockedBackoffMs away
export type WatchItem =
  | { type: 'connected' }
  | { type: 'event'; event: ApprovalEvent }
  | { type: 'disconnected'; error: BrokerError; attempt: number; retryInMs: number }
  | { type: 'locked'; message: string; attempt: number; retryInMs: number };

export interface WatchOptions {
  // Aborting ends the watch: the iterator then finishes (done) quietly.
  signal?: AbortSignal;
  // Delay before the first reconnect attempt; doubles with each failed
  // attempt up to maxBackoffMs (±20% jitter). Defaults 250 and 15 000.
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  // The cap while the store is locked, so that the watch is back soon after
  // an unlock. Default 2 000 (never above maxBackoffMs).
  maxLockedBackoffMs?: number;
  // Deadline of one stream. When it passes the watch reopens the stream at
  // once (a 'connected' item and a new snapshot, no 'disconnected').
  // Default 30 minutes.
  streamDeadlineMs?: number;
}

// Codes that retrying cannot fix: the iterator throws them.
const FATAL = new Set<grpc.status>([
  grpc.status.UNAUTHENTICATED,
  grpc.status.PERMISSION_DENIED,
  grpc.status.UNIMPLEMENTED,
  grpc.status.INVALID_ARGUMENT,
]);

// Above this many unread events the stream is paused until the reader
// catches up to RESUME_AT.
const HIGH_WATER = 256;
const RESUME_AT = 64;

export interface RequestWatch extends AsyncIterableIterator<WatchItem> {
  // Ends the watch; a pending next() resolves done. Idempotent.
  close(): void;
}

export interface StreamOpener {
  open(deadline: Date): grpc.ClientReadableStream<ApprovalEvent>;
  toError(e: unknown): BrokerError;
  // Whether the client was closed: the watch then ends.
  closed(): boolean;
  // Calls `listener` when the client is closed; returns its removal.
  onClose(listener: () => void): () => void;
}

type Step =
  | { kind: 'item'; item: WatchItem }
  | { kind: 'end'; error?: unknown };

export function startWatch(opener: StreamOpener, options: WatchOptions = {}): RequestWatch {
  return new Watch(opener, options);
}

class Watch implements RequestWatch {
  readonly #opener: StreamOpener;
  readonly #initialBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #maxLockedBackoffMs: number;
  readonly #streamDeadlineMs: number;
  readonly #signal?: AbortSignal;

  // What the reader has not taken yet, and the reader waiting for it.
  readonly #queue: Step[] = [];
  #waiter: ((step: Step) => void) | undefined;
  #closed = false;
  #finished = false;
  #stream: grpc.ClientReadableStream<ApprovalEvent> | undefined;
  #paused = false;
  #timer: NodeJS.Timeout | undefined;
  #attempt = 0;
  // Whether the last failed attempt found the store locked.
  #wasLocked = false;
  readonly #onAbort = (): void => this.close();
  #removeOnClose: (() => void) | undefined;

  constructor(opener: StreamOpener, options: WatchOptions) {
    this.#opener = opener;
    this.#initialBackoffMs = options.initialBackoffMs ?? 250;
    this.#maxBackoffMs = Math.max(options.maxBackoffMs ?? 15_000, this.#initialBackoffMs);
    this.#maxLockedBackoffMs = Math.max(Math.min(options.maxLockedBackoffMs ?? 2_000, this.#maxBackoffMs),
      this.#initialBackoffMs);
    this.#streamDeadlineMs = options.streamDeadlineMs ?? 30 * 60_000;
    this.#signal = options.signal;
    if (this.#signal?.aborted) {
      this.#closed = true;
      return;
    }
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#removeOnClose = opener.onClose(this.#onAbort);
    this.#connect();
  }

  [Symbol.asyncIterator](): RequestWatch {
    return this;
  }

  next(): Promise<IteratorResult<WatchItem>> {
    return new Promise((resolve, reject) => {
      const settle = (step: Step): void => {
        try {
          resolve(this.#take(step));
        } catch (e) {
          reject(e);
        }
      };
      if (this.#finished) {
        resolve({ done: true, value: undefined });
        return;
      }
      const step = this.#queue.shift();
      if (step !== undefined) settle(step);
      else if (this.#closed) resolve(this.#finish());
      else this.#waiter = settle;
    });
  }

  return(): Promise<IteratorResult<WatchItem>> {
    this.close();
    return Promise.resolve(this.#finish());
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#removeOnClose?.();
    clearTimeout(this.#timer);
    const stream = this.#stream;
    this.#stream = undefined;
    stream?.cancel();
    this.#queue.length = 0;
    this.#deliver({ kind: 'end' });
  }

  #take(step: Step): IteratorResult<WatchItem> {
    if (this.#paused && this.#queue.length <= RESUME_AT) {
      this.#paused = false;
      this.#stream?.resume();
    }
    if (step.kind === 'item') return { done: false, value: step.item };
    const result = this.#finish();
    if (step.error !== undefined) throw step.error;
    return result;
  }

  #finish(): IteratorResult<WatchItem> {
    this.#finished = true;
    this.#closed = true;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#removeOnClose?.();
    return { done: true, value: undefined };
  }

  #deliver(step: Step): void {
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      waiter(step);
      return;
    }
    if (step.kind === 'end' && this.#closed && step.error === undefined) return;
    this.#queue.push(step);
    if (!this.#paused && this.#queue.length > HIGH_WATER && this.#stream !== undefined) {
      this.#paused = true;
      this.#stream.pause();
    }
  }

  #connect(): void {
    if (this.#closed) return;
    if (this.#opener.closed()) {
      this.close();
      return;
    }
    const opened = Date.now();
    let stream: grpc.ClientReadableStream<ApprovalEvent>;
    try {
      stream = this.#opener.open(new Date(opened + this.#streamDeadlineMs));
    } catch (e) {
      this.#broken(this.#opener.toError(e));
      return;
    }
    this.#stream = stream;
    this.#paused = false;
    // Connected once the broker's first message (its snapshot) arrives: a
    // stream it refuses at once does not reset the backoff.
    let connected = false;
    stream.on('data', (event: ApprovalEvent) => {
      if (this.#stream !== stream) return;
      if (!connected) {
        connected = true;
        this.#attempt = 0;
        this.#deliver({ kind: 'item', item: { type: 'connected' } });
      }
      this.#deliver({ kind: 'item', item: { type: 'event', event } });
    });
    // Every failure also arrives as 'status'; this listener only keeps
    // grpc-js from treating the error as unhandled.
    stream.on('error', () => undefined);
    stream.on('status', (status: grpc.StatusObject) => {
      if (this.#stream !== stream) return;
      this.#stream = undefined;
      if (this.#closed) return;
      if (this.#opener.closed()) {
        this.close();
        return;
      }
      if (connected && status.code === grpc.status.DEADLINE_EXCEEDED &&
          Date.now() - opened >= this.#streamDeadlineMs - 1000) {
        this.#connect();  // Our own deadline: reopen at once.
        return;
      }
      const error = status.code === grpc.status.OK
        ? new BrokerError(grpc.status.UNAVAILABLE, 'the broker ended the watch stream')
        : this.#opener.toError(Object.assign(new Error(status.details), status));
      if (FATAL.has(error.grpcCode)) {
        this.#closed = true;
        this.#deliver({ kind: 'end', error });
        return;
      }
      this.#broken(error);
    });
  }

  // A locked store (FAILED_PRECONDITION naming it) is retried like a broken
  // stream, with a lower cap; any other FAILED_PRECONDITION too, as before.
  // The first break after a locked answer (the broker restarting once
  // unlocked) starts the backoff afresh.
  #broken(error: BrokerError): void {
    const locked = isStoreLocked(error);
    if (this.#wasLocked && !locked) this.#attempt = 0;
    this.#wasLocked = locked;
    this.#attempt += 1;
    const cap = locked ? this.#maxLockedBackoffMs : this.#maxBackoffMs;
    const base = Math.min(cap, this.#initialBackoffMs * 2 ** Math.min(this.#attempt - 1, 30));
    const retryInMs = Math.round(Math.min(cap, base * (0.8 + 0.4 * Math.random())));
    const attempt = this.#attempt;
    this.#deliver({
      kind: 'item',
      item: locked
        ? { type: 'locked', message: error.message, attempt, retryInMs }
        : { type: 'disconnected', error, attempt, retryInMs },
    });
    this.#timer = setTimeout(() => this.#connect(), retryInMs);
  }
}
