// The credential form as a VS Code webview panel: the page from html.ts,
// scripts on, local resources from media/ only, and a FormSession behind
// its messages (the passkey ceremony through PasskeyCeremonies). One panel
// per request or credential; opening it again brings the open one to the
// front.
import * as path from 'node:path';
import { promises as fs } from 'node:fs';

import * as vscode from 'vscode';

import type { CredbrokerClient, ProviderInfo } from '@credbroker/client';

import type { PasskeyCeremonies } from '../passkey/ceremonies';
import { renderFormPage } from './html';
import type { FileTarget } from './protocol';
import { FormSession, FormSubject, MAX_FILE_BYTES, PickedFile } from './session';

export class FormPanels {
  #open = new Map<string, { panel: vscode.WebviewPanel; session: FormSession }>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly onChanged: (outcome: string, message: string) => void,
    private readonly passkeys: PasskeyCeremonies,
  ) {}

  static keyOf(subject: FormSubject): string {
    return subject.mode === 'approve'
      ? `request:${subject.requestId}`
      : `${subject.mode}:${subject.provider}/${subject.profile}`;
  }

  // Opens (or reveals) the form. Rejects with the broker's error when the
  // form cannot be loaded.
  async open(client: CredbrokerClient, subject: FormSubject,
             providers: () => Promise<ProviderInfo[]>): Promise<void> {
    const key = FormPanels.keyOf(subject);
    const existing = this.#open.get(key);
    if (existing !== undefined) {
      existing.panel.reveal();
      return;
    }
    let panel: vscode.WebviewPanel | undefined;
    let closeTimer: NodeJS.Timeout | undefined;
    const session = new FormSession(client, subject, {
      post: (m) => void panel?.webview.postMessage(m),
      pickFile: (target) => pickFile(target),
      close: () => panel?.dispose(),
      changed: (outcome, message) => {
        this.onChanged(outcome, message);
        // Leave the outcome on screen for a moment, then close.
        closeTimer = setTimeout(() => panel?.dispose(), 2500);
      },
      // The same ceremony as the "Approve with passkey" command, with the
      // form's decision.
      approveWithPasskey: (request, action, signal) => this.passkeys.run(client,
        { kind: 'approve', requestId: request.requestId ?? '', action, approve: request }, signal),
    }, providers);
    const view = await session.load();
    const title = subject.mode === 'approve'
      ? `Approve: ${view.displayName} (${view.profile})`
      : `${subject.mode === 'add' ? 'Add' : 'Update'}: ${view.displayName} (${view.profile})`;
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    panel = vscode.window.createWebviewPanel('credbroker.form', title, vscode.ViewColumn.Active, {
      enableScripts: true,
      localResourceRoots: [media],
      retainContextWhenHidden: false,
    });
    const webview = panel.webview;
    webview.html = renderFormPage({
      cspSource: webview.cspSource,
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(media, 'form.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(media, 'form.css')).toString(),
    });
    const sub = webview.onDidReceiveMessage((m) => void session.handle(m));
    this.#open.set(key, { panel, session });
    panel.onDidDispose(() => {
      clearTimeout(closeTimer);
      sub.dispose();
      session.dispose();
      this.#open.delete(key);
    });
  }

  // The request ended elsewhere: tell its open form, if any.
  requestEnded(requestId: string, message: string): void {
    this.#open.get(`request:${requestId}`)?.session.requestEnded(message);
  }

  disposeAll(): void {
    for (const { panel } of [...this.#open.values()]) panel.dispose();
  }
}

// The file dialog; reads the chosen file as UTF-8 text, at most
// MAX_FILE_BYTES.
async function pickFile(target: FileTarget): Promise<PickedFile | undefined> {
  const uris = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel: 'Use this file',
    title: 'field' in target ? 'Choose the JSON key file' : 'Choose the JSON credentials file',
    filters: { 'JSON files': ['json'], 'All files': ['*'] },
  });
  if (uris === undefined || uris.length === 0) return undefined;
  const uri = uris[0];
  const stat = await vscode.workspace.fs.stat(uri);
  if (stat.size > MAX_FILE_BYTES) {
    throw new Error(`${path.basename(uri.path)} is ${stat.size} bytes: a key file is at most ` +
      `${MAX_FILE_BYTES} bytes. Choose the JSON file the provider's console downloaded.`);
  }
  const bytes = uri.scheme === 'file'
    ? await fs.readFile(uri.fsPath)
    : Buffer.from(await vscode.workspace.fs.readFile(uri));
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  bytes.fill(0);
  return { name: path.basename(uri.path), contents: text };
}
