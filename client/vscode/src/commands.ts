// The palette commands: each a thin use of @credbroker/client, with quick
// picks for choices and the "credbroker" output channel for reports. No
// secret value reaches any of them: the broker returns masked values only.
import * as vscode from 'vscode';

import type { ApprovalRequest, CredbrokerClient, CredentialSummary, ProviderInfo } from '@credbroker/client';
import { isBrokerError, toDate } from '@credbroker/client';

import { listAllCredentials, Node, readinessText, rotationText } from './tree';

export interface CommandContext {
  client(): CredbrokerClient | undefined;
  providers(): Promise<ProviderInfo[]>;
  pending(): ApprovalRequest[];
  openForm(subject: { mode: 'approve'; requestId: string } | { mode: 'update' | 'add'; provider: string; profile: string }): Promise<void>;
  denyRequest(request: ApprovalRequest): Promise<void>;
  refresh(): void;
  output: vscode.OutputChannel;
}

function errorText(e: unknown): string {
  if (isBrokerError(e)) {
    const lines = [e.message, ...e.fieldViolations.map((v) => `${v.field}: ${v.description}`)];
    return lines.join('; ');
  }
  return e instanceof Error ? e.message : String(e);
}

export function when(ts: Parameters<typeof toDate>[0]): string {
  const d = toDate(ts);
  return d === undefined || d.getTime() <= 0 ? '-' : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function requestTitle(r: ApprovalRequest): string {
  const need = r.need;
  return `${need?.provider ?? '?'}/${need?.profile || 'default'}: ${need?.action ?? ''}`;
}

// Runs `work` with the connected client, or says the broker is not there.
async function withClient<T>(ctx: CommandContext, work: (c: CredbrokerClient) => Promise<T>): Promise<T | undefined> {
  const client = ctx.client();
  if (client === undefined) {
    void vscode.window.showErrorMessage('credbroker: the broker is not connected. Start it (credbroker: Start broker) or check the settings.');
    return undefined;
  }
  try {
    return await work(client);
  } catch (e) {
    void vscode.window.showErrorMessage(`credbroker: ${errorText(e)}`);
    return undefined;
  }
}

// A credential from a tree node, or chosen in a quick pick.
async function pickCredential(ctx: CommandContext, client: CredbrokerClient, node: unknown,
                              placeHolder: string): Promise<CredentialSummary | undefined> {
  const n = node as Node | undefined;
  if (n !== undefined && n.kind === 'credential') return n.credential;
  const all = await listAllCredentials(client);
  if (all.length === 0) {
    void vscode.window.showInformationMessage('credbroker: no credential is stored yet.');
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(all.map((c) => ({
    label: `${c.provider}/${c.profile}`,
    description: [readinessText(c.readiness), rotationText(c)].filter((s) => s !== '').join(' · '),
    c,
  })), { placeHolder });
  return picked?.c;
}

export function registerCommands(context: vscode.ExtensionContext, ctx: CommandContext): void {
  const reg = (id: string, fn: (...args: unknown[]) => unknown): void => {
    context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  };
  reg('credbroker.showPending', () => showPending(ctx));
  reg('credbroker.review', (arg?: unknown) => review(ctx, arg));
  reg('credbroker.addCredential', (arg?: unknown) => withClient(ctx, () => addCredential(ctx, arg)));
  reg('credbroker.updateCredential', (node?: unknown) => withClient(ctx, (client) => updateCredential(ctx, client, node)));
  reg('credbroker.deleteCredential', (node?: unknown) => withClient(ctx, (client) => deleteCredential(ctx, client, node)));
  reg('credbroker.validateCredential', (node?: unknown) => withClient(ctx, (client) => validateCredential(ctx, client, node)));
  reg('credbroker.doctor', () => withClient(ctx, (client) => doctor(ctx, client)));
  reg('credbroker.history', (node?: unknown) => withClient(ctx, (client) => history(ctx, client, node)));
  reg('credbroker.grants', () => withClient(ctx, (client) => revokeGrant(client)));
  reg('credbroker.standing', () => withClient(ctx, (client) => revokeStandingApproval(client)));
  reg('credbroker.audit', () => withClient(ctx, (client) => showAudit(ctx, client)));
  reg('credbroker.auditVerify', () => withClient(ctx, (client) => verifyAudit(client)));
  reg('credbroker.refresh', () => ctx.refresh());
}

async function showPending(ctx: CommandContext): Promise<void> {
  const pending = ctx.pending();
  if (pending.length === 0) {
    void vscode.window.showInformationMessage('credbroker: no request is waiting for a decision.');
    return;
  }
  const picked = await vscode.window.showQuickPick(pending.map((r) => ({
    label: requestTitle(r),
    description: r.agentPeer,
    detail: `request ${r.requestId}, asked ${when(r.createdAt)}`,
    r,
  })), { placeHolder: 'A request to review' });
  if (picked !== undefined) await ctx.openForm({ mode: 'approve', requestId: picked.r.requestId });
}

async function review(ctx: CommandContext, arg?: unknown): Promise<unknown> {
  const id = typeof arg === 'string' ? arg : undefined;
  if (id === undefined) return vscode.commands.executeCommand('credbroker.showPending');
  await ctx.openForm({ mode: 'approve', requestId: id });
  return undefined;
}

// `arg`: a provider ID, a provider node of the tree, or nothing (a quick pick).
async function addCredential(ctx: CommandContext, arg?: unknown): Promise<void> {
  const providers = await ctx.providers();
  let id = typeof arg === 'string' ? arg : (arg as Node | undefined)?.kind === 'provider'
    ? (arg as Extract<Node, { kind: 'provider' }>).provider.id : undefined;
  if (id === undefined) {
    const picked = await vscode.window.showQuickPick(providers.map((p) => ({
      label: p.displayName, description: p.id, detail: p.description, id: p.id,
    })), { placeHolder: 'Which provider?', matchOnDescription: true });
    id = picked?.id;
  }
  if (id === undefined) return;
  const provider = providers.find((p) => p.id === id);
  const profile = await vscode.window.showInputBox({
    prompt: `Profile name for ${provider?.displayName ?? id}`,
    value: provider?.defaultProfile || 'default',
    validateInput: (v) => (/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(v.trim()) ? undefined
      : 'Letters, digits, ".", "_" and "-", starting with a letter or digit'),
  });
  if (profile === undefined) return;
  await ctx.openForm({ mode: 'add', provider: id, profile: profile.trim() });
}

async function updateCredential(ctx: CommandContext, client: CredbrokerClient, node?: unknown): Promise<void> {
  const c = await pickCredential(ctx, client, node, 'Which credential to update?');
  if (c !== undefined) await ctx.openForm({ mode: 'update', provider: c.provider, profile: c.profile });
}

async function deleteCredential(ctx: CommandContext, client: CredbrokerClient, node?: unknown): Promise<void> {
  const c = await pickCredential(ctx, client, node, 'Which credential to delete?');
  if (c === undefined) return;
  const answer = await vscode.window.showWarningMessage(
    `Delete ${c.provider}/${c.profile} and all its ${c.versionCount} version(s)? Agents will have to ask again.`,
    { modal: true }, 'Delete');
  if (answer !== 'Delete') return;
  const r = await client.deleteCredential({ provider: c.provider, profile: c.profile });
  ctx.refresh();
  void vscode.window.showInformationMessage(`credbroker: deleted ${c.provider}/${c.profile} (${r.versionsDeleted} version(s)).`);
}

async function validateCredential(ctx: CommandContext, client: CredbrokerClient, node?: unknown): Promise<void> {
  const c = await pickCredential(ctx, client, node, 'Which credential to validate?');
  if (c === undefined) return;
  const r = await client.validateCredential({ provider: c.provider, profile: c.profile });
  const out = ctx.output;
  out.appendLine(`== validate ${c.provider}/${c.profile}: ${readinessText(r.readiness)}`);
  writeFindings(out, r.findings, r.missingFields, r.manualChecks);
  out.show(true);
  const msg = `credbroker: ${c.provider}/${c.profile} is ${readinessText(r.readiness)}` +
    (r.findings.length > 0 ? ` (${r.findings.length} finding(s), see the output)` : '');
  if (r.valid) void vscode.window.showInformationMessage(msg);
  else void vscode.window.showWarningMessage(msg);
}

// Validates every stored credential and reports in the output channel.
async function doctor(ctx: CommandContext, client: CredbrokerClient): Promise<void> {
  const all = await listAllCredentials(client);
  const out = ctx.output;
  out.appendLine(`== doctor: ${all.length} stored credential(s), ${new Date().toISOString()}`);
  let bad = 0;
  for (const c of all) {
    const r = await client.validateCredential({ provider: c.provider, profile: c.profile });
    if (r.readiness !== 'READINESS_READY') bad++;
    out.appendLine(`${c.provider}/${c.profile}: ${readinessText(r.readiness)}${rotationText(c) !== '' ? `, ${rotationText(c)}` : ''}`);
    writeFindings(out, r.findings, r.missingFields, r.readiness === 'READINESS_READY' ? [] : r.manualChecks);
    if (r.readiness !== 'READINESS_READY' && r.requiredPermissions.length > 0) {
      out.appendLine(`    permissions needed: ${r.requiredPermissions.join('; ')}`);
    }
  }
  out.show(true);
  const summary = all.length === 0 ? 'no credential is stored.'
    : `${all.length - bad} ready, ${bad} need${bad === 1 ? 's' : ''} attention (see the output).`;
  if (bad === 0) void vscode.window.showInformationMessage(`credbroker doctor: ${summary}`);
  else void vscode.window.showWarningMessage(`credbroker doctor: ${summary}`);
}

// A credential's versions; the one chosen is rolled back to.
async function history(ctx: CommandContext, client: CredbrokerClient, node?: unknown): Promise<void> {
  const c = await pickCredential(ctx, client, node, 'History of which credential?');
  if (c === undefined) return;
  const h = await client.listCredentialVersions({ provider: c.provider, profile: c.profile });
  const picked = await vscode.window.showQuickPick([...h.versions].reverse().map((v) => ({
    label: `version ${v.version}${v.current ? ' (current)' : ''}`,
    description: when(v.createdAt),
    detail: `fingerprint ${v.fingerprint}`,
    v,
  })), { placeHolder: `${c.provider}/${c.profile}: choose a version to restore (a rollback stores it as a new version)` });
  if (picked === undefined || picked.v.current) return;
  const answer = await vscode.window.showWarningMessage(
    `Restore version ${picked.v.version} of ${c.provider}/${c.profile} as a new version?`, { modal: true }, 'Roll back');
  if (answer !== 'Roll back') return;
  const r = await client.rollbackCredential({ provider: c.provider, profile: c.profile, version: picked.v.version });
  ctx.refresh();
  void vscode.window.showInformationMessage(
    `credbroker: ${c.provider}/${c.profile} now at version ${r.credential?.version ?? '?'} (values of version ${r.restoredVersion}).`);
}

// The active grants; the one chosen is revoked.
async function revokeGrant(client: CredbrokerClient): Promise<void> {
  const r = await client.listGrants({ includeEnded: false, pageSize: 1000 });
  if (r.grants.length === 0) {
    void vscode.window.showInformationMessage('credbroker: no active grant.');
    return;
  }
  const picked = await vscode.window.showQuickPick(r.grants.map((g) => ({
    label: `${g.provider}/${g.profile}: ${g.action}`,
    description: `${String(g.scope).replace(/^SCOPE_/, '').toLowerCase()}, until ${when(g.expiresAt)}`,
    detail: `grant ${g.grantId}, version ${g.credentialVersion}, agent session ${g.agentSession}`,
    g,
  })), { placeHolder: 'Active grants: choose one to revoke' });
  if (picked === undefined) return;
  const reason = await vscode.window.showInputBox({ prompt: `Revoke ${picked.g.grantId}: reason (the agent is told)`, value: 'revoked from the IDE' });
  if (reason === undefined) return;
  await client.revokeGrant({ grantId: picked.g.grantId, reason });
  void vscode.window.showInformationMessage(`credbroker: revoked grant ${picked.g.grantId}.`);
}

// The standing approvals; the one chosen is revoked.
async function revokeStandingApproval(client: CredbrokerClient): Promise<void> {
  const r = await client.listStandingApprovals({ includeEnded: false });
  if (r.approvals.length === 0) {
    void vscode.window.showInformationMessage('credbroker: no standing approval.');
    return;
  }
  const picked = await vscode.window.showQuickPick(r.approvals.map((s) => ({
    label: `${s.provider}/${s.profile}: "${s.actionPattern}"`,
    description: `until ${when(s.expiresAt)}`,
    detail: `standing approval ${s.id}, since ${when(s.createdAt)}`,
    s,
  })), { placeHolder: 'Standing approvals: choose one to revoke' });
  if (picked === undefined) return;
  const answer = await vscode.window.showWarningMessage(
    `Revoke the standing approval for ${picked.s.provider}/${picked.s.profile} ("${picked.s.actionPattern}")?`, { modal: true }, 'Revoke');
  if (answer !== 'Revoke') return;
  await client.revokeStandingApproval({ id: picked.s.id });
  void vscode.window.showInformationMessage(`credbroker: revoked standing approval ${picked.s.id}.`);
}

async function showAudit(ctx: CommandContext, client: CredbrokerClient): Promise<void> {
  const r = await client.listAuditEvents({ pageSize: 500 });
  const out = ctx.output;
  out.appendLine(`== audit log: the ${r.events.length} most recent event(s)`);
  for (const e of r.events) {
    const who = [e.role, e.peer].filter((s) => s !== '').join(' ');
    const what = [e.provider !== '' ? `${e.provider}/${e.profile}` : '', e.requestId, e.grantId, e.action]
      .filter((s) => s !== '').join(' ');
    out.appendLine(`#${e.sequence} ${when(e.time)} ${e.kind} ${e.outcome}${who !== '' ? ` by ${who}` : ''}` +
      `${what !== '' ? ` — ${what}` : ''}${e.detail !== '' ? ` (${e.detail})` : ''}`);
  }
  if (r.nextPageToken !== '') out.appendLine('(more events: use `credctl audit` with --since/--until)');
  out.show(true);
}

async function verifyAudit(client: CredbrokerClient): Promise<void> {
  const r = await client.verifyAuditLog({});
  if (r.intact) {
    void vscode.window.showInformationMessage(`credbroker: the audit log is intact (${r.eventsChecked} events checked).`);
  } else {
    void vscode.window.showErrorMessage(
      `credbroker: the audit log was altered at event ${r.brokenAtSequence}: ${r.problem} (${r.eventsChecked} events intact before it).`);
  }
}

function writeFindings(out: vscode.OutputChannel, findings: Array<{ field: string; severity: unknown; message: string; fix: string }>,
                       missing: string[], manual: string[]): void {
  for (const m of missing) out.appendLine(`    missing: ${m}`);
  for (const f of findings) {
    const sev = String(f.severity).replace(/^SEVERITY_/, '').toLowerCase();
    out.appendLine(`    ${sev}${f.field !== '' ? ` ${f.field}` : ''}: ${f.message}${f.fix !== '' ? ` Fix: ${f.fix}` : ''}`);
  }
  for (const m of manual) out.appendLine(`    check by hand: ${m}`);
}
