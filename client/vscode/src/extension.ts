// The credbroker extension: the IDE side of the approval flow. It connects
// to the local broker (asking for the store's passphrase when the broker
// started locked), raises a notification for each credential need an
// agent announces, opens the credential form to approve or deny it, and
// shows the stored credentials. Everything goes through @credbroker/client.
import * as path from 'node:path';

import * as vscode from 'vscode';

import type { ApprovalRequest, CredbrokerClient, ProviderInfo } from '@credbroker/client';
import { isBrokerError } from '@credbroker/client';

import { registerCommands, requestTitle } from './commands';
import { PasskeyCeremonies } from './passkey/ceremonies';
import { registerPasskeyCommands } from './passkey/commands';
import { findBroker, resolveSettings, Resolved, Settings } from './config';
import { FormPanels } from './form/panel';
import type { FormSubject } from './form/session';
import { BrokerLink, LinkState } from './link';
import { notificationText, plain } from './text';
import { CredentialsTree } from './tree';

function readSettings(): Settings {
  const c = vscode.workspace.getConfiguration('credbroker');
  return {
    address: c.get<string>('address', ''),
    socketPath: c.get<string>('socketPath', ''),
    tokenFile: c.get<string>('tokenFile', ''),
    dataDir: c.get<string>('dataDir', ''),
    tlsCaFile: c.get<string>('tlsCaFile', ''),
    brokerPath: c.get<string>('brokerPath', 'credbrokerd'),
  };
}

class Extension {
  readonly link = new BrokerLink();
  readonly tree = new CredentialsTree();
  readonly output = vscode.window.createOutputChannel('credbroker');
  readonly stateItem = vscode.window.createStatusBarItem('credbroker.state', vscode.StatusBarAlignment.Left, 50);
  readonly pendingItem = vscode.window.createStatusBarItem('credbroker.pending', vscode.StatusBarAlignment.Left, 49);
  readonly passkeys = new PasskeyCeremonies(this.output);
  readonly panels: FormPanels;
  #resolved: Resolved;
  #providers: Promise<ProviderInfo[]> | undefined;
  #brokerBin: string | undefined;
  // The passphrase prompt on screen, closed when the store is unlocked
  // elsewhere; and whether this locked spell has prompted already.
  #unlockPrompt: vscode.CancellationTokenSource | undefined;
  #promptedWhileLocked = false;

  constructor(readonly context: vscode.ExtensionContext) {
    this.panels = new FormPanels(context.extensionUri, (outcome) => {
      if (outcome === 'saved' || outcome === 'approved') this.tree.refresh();
    }, this.passkeys);
    this.#resolved = resolveSettings(readSettings());
    this.stateItem.name = 'credbroker: broker';
    this.pendingItem.name = 'credbroker: pending requests';
    this.pendingItem.command = 'credbroker.showPending';
  }

  activate(): void {
    const ctx = this.context;
    ctx.subscriptions.push(this.output, this.stateItem, this.pendingItem,
      vscode.window.createTreeView('credbroker.credentials', { treeDataProvider: this.tree, showCollapseAll: true }),
      { dispose: () => this.link.stop() },
      { dispose: () => this.panels.disposeAll() }, this.passkeys);

    this.link.on('state', (s) => this.#onState(s));
    this.link.on('pending', (p) => this.#showPending(p));
    this.link.on('added', (r, how) => this.#notify(r, how.fromSnapshot));
    this.link.on('ended', (id, message) => this.panels.requestEnded(id, message));
    this.link.on('rotationDue', (c, message) => {
      const what = c !== null ? `${c.provider}/${c.profile}` : 'A credential';
      void vscode.window.showWarningMessage(
        plain(`credbroker: ${what} is past its rotation period${message !== '' ? `: ${message}` : '.'}`),
        'Update').then((choice) => {
        if (choice === 'Update' && c !== null) {
          void this.openForm({ mode: 'update', provider: c.provider, profile: c.profile });
        }
      });
    });

    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('credbroker')) this.restart();
    }, undefined, ctx.subscriptions);

    ctx.subscriptions.push(
      vscode.commands.registerCommand('credbroker.reconnect', () => this.restart()),
      vscode.commands.registerCommand('credbroker.startBroker', () => this.startBroker()),
      vscode.commands.registerCommand('credbroker.unlock', () => this.unlock()));
    registerCommands(ctx, {
      client: () => this.link.client,
      providers: () => this.providers(),
      pending: () => this.link.pending,
      openForm: (s) => this.openForm(s),
      denyRequest: (r) => this.denyFromNotification(r),
      refresh: () => this.tree.refresh(),
      output: this.output,
    });
    registerPasskeyCommands(ctx, {
      client: () => this.link.client,
      pending: () => this.link.pending,
      ceremonies: this.passkeys,
    });
    this.restart();
  }

  restart(): void {
    this.#resolved = resolveSettings(readSettings());
    this.#providers = undefined;
    this.output.appendLine(`Connecting to ${this.#resolved.address} (token ${this.#resolved.tokenFile})`);
    void findBroker(readSettings().brokerPath).then((bin) => {
      this.#brokerBin = bin;
      this.#onState(this.link.state);
    });
    this.link.start(this.#resolved);
  }

  providers(): Promise<ProviderInfo[]> {
    const client = this.link.client;
    if (client === undefined) return Promise.resolve([]);
    if (this.#providers === undefined) {
      this.#providers = client.listProviders({}).then((r) => r.providers);
      this.#providers.catch(() => { this.#providers = undefined; });
    }
    return this.#providers;
  }

  #onState(s: LinkState): void {
    const item = this.stateItem;
    item.backgroundColor = undefined;
    if (s.kind !== 'locked') {
      this.#promptedWhileLocked = false;
      this.#unlockPrompt?.cancel();
    }
    switch (s.kind) {
      case 'locked':
        this.#showLocked(s);
        break;
      case 'connected':
        item.text = '$(shield) credbroker';
        item.tooltip = `credbroker: connected to ${s.address}`;
        item.command = 'credbroker.credentials.focus';
        this.tree.setClient(this.link.client);
        break;
      case 'connecting':
      case 'stopped':
        item.text = '$(sync~spin) credbroker';
        item.tooltip = `credbroker: connecting to ${s.address}`;
        item.command = 'credbroker.reconnect';
        break;
      case 'down':
      case 'refused':
        this.#showUnreachable(s);
        break;
    }
    item.show();
    this.#showPending(this.link.pending);
  }

  // The store is locked: a status item that unlocks it, and one prompt for
  // the passphrase per locked spell.
  #showLocked(s: Extract<LinkState, { kind: 'locked' }>): void {
    const item = this.stateItem;
    item.text = '$(lock) credbroker: locked';
    item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
    const tip = new vscode.MarkdownString(undefined, true);
    tip.appendText(`The broker at ${s.address} started without its store's passphrase, so it holds ` +
      'nothing open and answers no request until the store is unlocked. ');
    tip.appendMarkdown('\n\n');
    tip.isTrusted = { enabledCommands: ['credbroker.unlock'] };
    tip.appendMarkdown('[Unlock the store](command:credbroker.unlock)');
    item.tooltip = tip;
    item.command = 'credbroker.unlock';
    this.tree.setClient(undefined);
    if (!this.#promptedWhileLocked) {
      this.#promptedWhileLocked = true;
      this.output.appendLine(`The broker at ${s.address} is locked: asking for the store's passphrase`);
      void this.unlock();
    }
  }

  // The broker is not running, or refused this client: a status item that
  // starts it (when credbrokerd was found) or reconnects.
  #showUnreachable(s: Extract<LinkState, { kind: 'down' | 'refused' }>): void {
    const item = this.stateItem;
    const notRunning = s.kind === 'down';
    item.text = notRunning ? '$(debug-disconnect) credbroker: not running' : '$(error) credbroker: refused';
    item.backgroundColor = new vscode.ThemeColor(notRunning ? 'statusBarItem.warningBackground' : 'statusBarItem.errorBackground');
    const tip = new vscode.MarkdownString(undefined, true);
    tip.appendText(notRunning
      ? `The credential broker is not running at ${s.address}: ${s.reason}`
      : `The broker at ${s.address} refused this client: ${s.reason} (check credbroker.tokenFile)`);
    tip.appendMarkdown('\n\n');
    if (notRunning && this.#brokerBin !== undefined) {
      tip.isTrusted = { enabledCommands: ['credbroker.startBroker', 'credbroker.reconnect'] };
      tip.appendMarkdown('[Start broker](command:credbroker.startBroker) · [Reconnect](command:credbroker.reconnect)');
    } else {
      tip.isTrusted = { enabledCommands: ['credbroker.reconnect'] };
      tip.appendMarkdown('[Reconnect](command:credbroker.reconnect)');
      if (notRunning) tip.appendText(' (credbrokerd was not found on PATH: see credbroker.brokerPath)');
    }
    item.tooltip = tip;
    item.command = notRunning && this.#brokerBin !== undefined ? 'credbroker.startBroker' : 'credbroker.reconnect';
    this.tree.setClient(undefined);
  }

  #showPending(pending: ApprovalRequest[]): void {
    const item = this.pendingItem;
    if (this.link.state.kind !== 'connected') {
      item.hide();
      return;
    }
    const n = pending.length;
    item.text = n === 0 ? '$(bell) 0 pending' : `$(bell-dot) ${n} pending`;
    item.tooltip = n === 0 ? 'credbroker: no request is waiting for a decision'
      : `credbroker: ${n} request${n === 1 ? '' : 's'} waiting for a decision:\n` +
        pending.map((r) => `• ${requestTitle(r)}`).join('\n');
    item.backgroundColor = n === 0 ? undefined : new vscode.ThemeColor('statusBarItem.warningBackground');
    item.show();
  }

  #notify(r: ApprovalRequest, fromSnapshot: boolean): void {
    const text = fromSnapshot ? `${notificationText(r)} (waiting since the broker connected)` : notificationText(r);
    void vscode.window.showInformationMessage(text, 'Review', 'Deny').then(async (choice) => {
      if (choice === 'Review') await this.openForm({ mode: 'approve', requestId: r.requestId });
      else if (choice === 'Deny') await this.denyFromNotification(r);
    });
  }

  async denyFromNotification(r: ApprovalRequest): Promise<void> {
    const reason = await vscode.window.showInputBox({
      title: `Deny ${requestTitle(r)}`,
      prompt: 'Reason (the agent sees it); Escape cancels',
      placeHolder: 'e.g. not now',
    });
    if (reason === undefined) return;
    const client = this.link.client;
    if (client === undefined) {
      void vscode.window.showErrorMessage('credbroker: the broker is not connected.');
      return;
    }
    try {
      await client.deny({ requestId: r.requestId, reason: reason.trim() });
      void vscode.window.showInformationMessage(`credbroker: denied ${plain(requestTitle(r))}.`);
    } catch (e) {
      void vscode.window.showErrorMessage(`credbroker: ${isBrokerError(e) ? e.message : String(e)}`);
    }
  }

  async openForm(subject: FormSubject): Promise<void> {
    const client: CredbrokerClient | undefined = this.link.client;
    if (client === undefined) {
      void vscode.window.showErrorMessage('credbroker: the broker is not connected.');
      return;
    }
    try {
      await this.panels.open(client, subject, () => this.providers());
    } catch (e) {
      void vscode.window.showErrorMessage(`credbroker: cannot open the form: ${isBrokerError(e) ? e.message : String(e)}`);
    }
  }

  // Asks for the store's passphrase (a password input box) and unlocks the
  // broker with it; asks again after a wrong one. The passphrase goes to the
  // broker only: never logged, never stored.
  async unlock(): Promise<void> {
    if (this.link.state.kind !== 'locked') {
      void vscode.window.showInformationMessage(this.link.state.kind === 'connected'
        ? 'credbroker: the store is not locked.'
        : 'credbroker: the broker is not connected; it is unlocked once it answers as locked.');
      return;
    }
    if (this.#unlockPrompt !== undefined) return;  // Already on screen.
    const cancel = new vscode.CancellationTokenSource();
    this.#unlockPrompt = cancel;
    let prompt = 'The credential broker started without the passphrase of its store (it was started ' +
      'without a terminal). Type the passphrase you chose when the store was created to unlock it; ' +
      'it goes to the broker only. Escape: later ("credbroker: Unlock the store").';
    try {
      for (;;) {
        const passphrase = await vscode.window.showInputBox({
          title: 'credbroker: unlock the credential store',
          prompt,
          placeHolder: "the store's passphrase",
          password: true,
          ignoreFocusOut: true,
        }, cancel.token);
        if (passphrase === undefined || cancel.token.isCancellationRequested) return;
        if (passphrase === '') {
          prompt = 'The passphrase is empty. Type the store\'s passphrase, or Escape to unlock later.';
          continue;
        }
        try {
          await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'credbroker: unlocking' },
            () => this.link.unlock(passphrase));
          this.output.appendLine('The store is unlocked; reconnecting');
          return;
        } catch (e) {
          if (isBrokerError(e) && e.code === 'PERMISSION_DENIED') {
            this.output.appendLine('Unlock: a wrong passphrase');
            prompt = `That passphrase does not open the store (${plain(e.message)}). Try again, or Escape to unlock later.`;
            continue;
          }
          const why = isBrokerError(e) ? e.message : e instanceof Error ? e.message : String(e);
          this.output.appendLine(`Unlock failed: ${why}`);
          void vscode.window.showErrorMessage(`credbroker: cannot unlock the store: ${plain(why)}`);
          return;
        }
      }
    } finally {
      cancel.dispose();
      if (this.#unlockPrompt === cancel) this.#unlockPrompt = undefined;
    }
  }

  // Runs credbrokerd in a terminal, where it can ask for its passphrase.
  async startBroker(): Promise<void> {
    const bin = await findBroker(readSettings().brokerPath);
    this.#brokerBin = bin;
    if (bin === undefined) {
      void vscode.window.showErrorMessage(
        'credbroker: credbrokerd was not found on PATH. Install it, or set credbroker.brokerPath to its path.');
      return;
    }
    // The data directory: the setting's, else the token file's directory
    // when only the token file was set, else the default one.
    const r = this.#resolved;
    const settings = readSettings();
    const dataDir = r.explicitDataDir || settings.tokenFile.trim() === '' ? r.dataDir : path.dirname(r.tokenFile);
    const args = ['--data_dir', dataDir];
    if (r.address !== `unix:${path.join(dataDir, 'broker.sock')}`) args.push('--listen', r.address);
    const terminal = vscode.window.createTerminal({ name: 'credbrokerd', shellPath: bin, shellArgs: args });
    terminal.show(true);
    this.output.appendLine(`Started ${bin} ${args.join(' ')} in a terminal`);
    setTimeout(() => this.link.poke(), 1000);
  }
}

let extension: Extension | undefined;

export function activate(context: vscode.ExtensionContext): void {
  extension = new Extension(context);
  extension.activate();
}

export function deactivate(): void {
  extension?.link.stop();
  extension = undefined;
}
