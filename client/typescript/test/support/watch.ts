// Reads a RequestWatch in the background so that a test can wait for the
// items it expects, in order.
import type { RequestWatch, WatchItem } from '../../src';

export class WatchReader {
  readonly items: WatchItem[] = [];
  readonly done: Promise<void>;
  error: unknown;
  #cursor = 0;
  #waiters: Array<() => void> = [];
  #ended = false;

  constructor(readonly watch: RequestWatch) {
    this.done = (async () => {
      try {
        for await (const item of watch) {
          this.items.push(item);
          this.#wake();
        }
      } catch (e) {
        this.error = e;
      } finally {
        this.#ended = true;
        this.#wake();
      }
    })();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  get ended(): boolean {
    return this.#ended;
  }

  // The next item after the last one returned that matches; later calls
  // continue from there.
  async next(match: (item: WatchItem) => boolean, what: string, timeoutMs = 20_000): Promise<WatchItem> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.#cursor < this.items.length) {
        const item = this.items[this.#cursor++]!;
        if (match(item)) return item;
      }
      if (this.#ended) throw new Error(`the watch ended before ${what} (error: ${String(this.error)})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; items: ${summary(this.items)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  nextEvent(kind: string, requestId?: string, timeoutMs?: number): Promise<WatchItem> {
    return this.next((i) => i.type === 'event' && i.event.kind === kind &&
      (requestId === undefined || i.event.request?.requestId === requestId),
    `${kind}${requestId === undefined ? '' : ` of ${requestId}`}`, timeoutMs);
  }
}

export function summary(items: WatchItem[]): string {
  return JSON.stringify(items.map((i) => i.type === 'event'
    ? `${i.event.kind}:${i.event.request?.requestId ?? ''}`
    : i.type === 'disconnected' ? `disconnected:${i.error.code}` : i.type));
}
