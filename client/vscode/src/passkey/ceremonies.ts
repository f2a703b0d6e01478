// PasskeyCeremonies: runs a WebAuthn ceremony in the person's browser for
// the extension — the commands ("Register a passkey", "Approve with
// passkey") and the credential form's "Approve with passkey" button. It
// keeps one PasskeyPage per connected client on the configured port
// (credbroker.passkeyPort), opens the ceremony's page with openExternal and
// settles with the broker's answer. Not thread-safe in any sense that
// matters: the extension host runs it on its one event loop.
import * as vscode from 'vscode';

import type { CredbrokerClient } from '@credbroker/client';

import { Ceremony, CeremonyResult, PasskeyPage } from './page';

export class PasskeyCeremonies implements vscode.Disposable {
  #page: PasskeyPage | undefined;
  #pageClient: CredbrokerClient | undefined;

  constructor(private readonly output: vscode.OutputChannel) {}

  // Opens the ceremony's page in the browser; resolves with the broker's
  // answer, or CANCELLED when `signal` aborts first. Rejects only when the
  // page cannot be served (the port is taken).
  async run(client: CredbrokerClient, ceremony: Ceremony, signal?: AbortSignal): Promise<CeremonyResult> {
    const page = await this.#pageFor(client);
    const { url, result, cancel } = page.open(ceremony);
    if (signal?.aborted) cancel();
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      this.output.appendLine(`Passkey ceremony at ${page.origin} (the broker must list it in --passkey_origins)`);
      if (!signal?.aborted) await vscode.env.openExternal(vscode.Uri.parse(url));
      return await result;
    } finally {
      signal?.removeEventListener('abort', cancel);
    }
  }

  dispose(): void {
    void this.#page?.stop();
    this.#page = undefined;
    this.#pageClient = undefined;
  }

  // One page per connected client: a reconnect makes a new client.
  async #pageFor(client: CredbrokerClient): Promise<PasskeyPage> {
    if (this.#page !== undefined && this.#pageClient === client) return this.#page;
    await this.#page?.stop();
    this.#page = undefined;
    const port = vscode.workspace.getConfiguration('credbroker').get<number>('passkeyPort', 47913);
    const page = new PasskeyPage(client, port);
    await page.start();
    this.#page = page;
    this.#pageClient = client;
    return page;
  }
}
