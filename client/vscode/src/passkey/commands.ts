// The passkey commands: "Register a passkey" and "Approve with passkey".
// Each opens the ceremony's loopback page (page.ts, through ceremonies.ts)
// in the person's browser and reports the broker's answer. The PIN that
// registration needs is asked in VS Code (a password box), never put in
// the page or its URL.
import * as vscode from 'vscode';

import type { ApprovalRequest, CredbrokerClient } from '@credbroker/client';

import type { PasskeyCeremonies } from './ceremonies';
import type { Ceremony } from './page';

export interface PasskeyContext {
  client(): CredbrokerClient | undefined;
  pending(): ApprovalRequest[];
  ceremonies: PasskeyCeremonies;
}

export function registerPasskeyCommands(context: vscode.ExtensionContext, ctx: PasskeyContext): void {
  const run = async (work: (client: CredbrokerClient) => Promise<void>): Promise<void> => {
    const client = ctx.client();
    if (client === undefined) {
      void vscode.window.showErrorMessage('credbroker: the broker is not connected.');
      return;
    }
    try {
      await work(client);
    } catch (e) {
      void vscode.window.showErrorMessage(`credbroker: ${e instanceof Error ? e.message : String(e)}`);
    }
  };

  const ceremony = async (client: CredbrokerClient, c: Ceremony): Promise<void> => {
    const r = await ctx.ceremonies.run(client, c);
    if (r.ok) void vscode.window.showInformationMessage(`credbroker: ${r.message}`);
    else void vscode.window.showErrorMessage(`credbroker: ${r.code ?? 'refused'}: ${r.message}`);
  };

  context.subscriptions.push(vscode.commands.registerCommand('credbroker.registerPasskey', () => run(async (client) => {
    const pin = await vscode.window.showInputBox({ prompt: 'Your approval PIN (registering a passkey changes the factor)', password: true });
    if (pin === undefined) return;
    const name = await vscode.window.showInputBox({ prompt: 'A name for this passkey', value: 'my passkey' });
    if (name === undefined) return;
    await ceremony(client, { kind: 'register', pin, name });
  })));

  context.subscriptions.push(vscode.commands.registerCommand('credbroker.approveWithPasskey', (arg?: unknown) => run(async (client) => {
    const pending = ctx.pending();
    let r = pending.find((p) => p.requestId === arg);
    if (r === undefined) {
      const picked = await vscode.window.showQuickPick(pending.map((p) => ({
        label: `${p.need?.provider ?? '?'}: ${p.need?.action ?? ''}`, description: p.requestId, p,
      })), { placeHolder: 'Approve which request (with the stored credential, once)?' });
      r = picked?.p;
    }
    if (r === undefined) return;
    await ceremony(client, { kind: 'approve', requestId: r.requestId, action: r.need?.action ?? '',
      approve: { requestId: r.requestId } });
  })));
}
