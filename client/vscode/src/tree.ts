// The "Credentials" view: every provider the broker knows, its configured
// profiles with readiness, rotation, expiry and resource bindings. Masked
// values only (the broker never sends others).
import * as vscode from 'vscode';

import type {
  CredbrokerClient,
  CredentialSummary,
  ProviderInfo,
  ResourceBinding,
} from '@credbroker/client';
import { toDate } from '@credbroker/client';

export type Node =
  | { kind: 'provider'; provider: ProviderInfo; credentials: CredentialSummary[] }
  | { kind: 'credential'; provider: ProviderInfo; credential: CredentialSummary; bindings: ResourceBinding[] }
  | { kind: 'detail'; label: string; description?: string; tooltip?: string; icon?: string }
  | { kind: 'message'; label: string; icon?: string };

export function readinessText(r: CredentialSummary['readiness']): string {
  return String(r).replace(/^READINESS_/, '').replace(/_/g, ' ').toLowerCase();
}

function readinessIcon(r: CredentialSummary['readiness']): vscode.ThemeIcon {
  switch (r) {
    case 'READINESS_READY': return new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed'));
    case 'READINESS_ROTATION_DUE': return new vscode.ThemeIcon('history', new vscode.ThemeColor('list.warningForeground'));
    case 'READINESS_INCOMPLETE': return new vscode.ThemeIcon('circle-large-outline', new vscode.ThemeColor('list.warningForeground'));
    default: return new vscode.ThemeIcon('error', new vscode.ThemeColor('list.errorForeground'));
  }
}

function day(ts: Parameters<typeof toDate>[0]): string {
  const d = toDate(ts);
  return d === undefined || d.getTime() <= 0 ? '' : d.toISOString().slice(0, 10);
}

export function rotationText(c: CredentialSummary): string {
  if (day(c.rotationDueAt) === '') return '';
  return c.daysUntilRotation > 0 ? `rotate in ${c.daysUntilRotation} d` : 'rotation due';
}

export class CredentialsTree implements vscode.TreeDataProvider<Node> {
  readonly #changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.#changed.event;
  #client: CredbrokerClient | undefined;
  #cache: Node[] | undefined;

  setClient(client: CredbrokerClient | undefined): void {
    this.#client = client;
    this.refresh();
  }

  refresh(): void {
    this.#cache = undefined;
    this.#changed.fire(undefined);
  }

  getTreeItem(n: Node): vscode.TreeItem {
    switch (n.kind) {
      case 'provider': {
        const item = new vscode.TreeItem(n.provider.displayName,
          n.credentials.length > 0 ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None);
        item.id = `provider:${n.provider.id}`;
        item.description = n.credentials.length > 0
          ? `${n.credentials.length} profile${n.credentials.length === 1 ? '' : 's'}`
          : 'not configured';
        item.tooltip = n.provider.description;
        item.contextValue = 'provider';
        item.iconPath = new vscode.ThemeIcon(n.credentials.length > 0 ? 'key' : 'circle-outline');
        if (n.credentials.length === 0) {
          item.command = { command: 'credbroker.addCredential', title: 'Add', arguments: [n.provider.id] };
        }
        return item;
      }
      case 'credential': {
        const c = n.credential;
        const item = new vscode.TreeItem(`${c.profile}${c.isDefault ? ' (default)' : ''}`,
          vscode.TreeItemCollapsibleState.Collapsed);
        item.id = `credential:${c.provider}/${c.profile}`;
        const bits = [readinessText(c.readiness), rotationText(c)];
        if (day(c.expiresAt) !== '') bits.push(`expires ${day(c.expiresAt)}`);
        if (n.bindings.length > 0) bits.push(`${n.bindings.length} binding${n.bindings.length === 1 ? '' : 's'}`);
        item.description = bits.filter((b) => b !== '').join(' · ');
        item.tooltip = `${n.provider.displayName} / ${c.profile}: ${readinessText(c.readiness)}, version ${c.version}`;
        item.contextValue = 'credential';
        item.iconPath = readinessIcon(c.readiness);
        return item;
      }
      case 'detail': {
        const item = new vscode.TreeItem(n.label, vscode.TreeItemCollapsibleState.None);
        item.description = n.description;
        item.tooltip = n.tooltip;
        if (n.icon !== undefined) item.iconPath = new vscode.ThemeIcon(n.icon);
        return item;
      }
      case 'message': {
        const item = new vscode.TreeItem(n.label, vscode.TreeItemCollapsibleState.None);
        if (n.icon !== undefined) item.iconPath = new vscode.ThemeIcon(n.icon);
        return item;
      }
    }
  }

  async getChildren(n?: Node): Promise<Node[]> {
    if (n === undefined) return this.#roots();
    if (n.kind === 'provider') {
      return n.credentials.map((credential): Node => ({
        kind: 'credential',
        provider: n.provider,
        credential,
        bindings: this.#bindings.filter((b) =>
          b.provider === credential.provider && b.profile === credential.profile),
      }));
    }
    if (n.kind === 'credential') return this.#details(n);
    return [];
  }

  async #roots(): Promise<Node[]> {
    if (this.#cache !== undefined) return this.#cache;
    const client = this.#client;
    if (client === undefined) return [];
    try {
      const [providers, credentials, bindings] = await Promise.all([
        client.listProviders({}),
        listAllCredentials(client),
        client.listBindings({}).catch(() => ({ bindings: [] as ResourceBinding[] })),
      ]);
      this.#bindings = bindings.bindings;
      this.#cache = providers.providers.map((provider) => ({
        kind: 'provider',
        provider,
        credentials: credentials.filter((c) => c.provider === provider.id),
      }));
      return this.#cache;
    } catch (e) {
      return [{ kind: 'message', label: `Cannot list credentials: ${(e as Error).message}`, icon: 'error' }];
    }
  }

  #bindings: ResourceBinding[] = [];

  #details(n: Extract<Node, { kind: 'credential' }>): Node[] {
    const c = n.credential;
    const out: Node[] = [];
    out.push({ kind: 'detail', label: 'Readiness', description: readinessText(c.readiness), icon: 'pulse' });
    out.push({ kind: 'detail', label: 'Version', description: `${c.version} of ${c.versionCount}`,
               tooltip: `fingerprint ${c.fingerprint}`, icon: 'versions' });
    if (day(c.updatedAt) !== '') out.push({ kind: 'detail', label: 'Updated', description: day(c.updatedAt), icon: 'calendar' });
    if (day(c.rotationDueAt) !== '') {
      out.push({ kind: 'detail', label: 'Rotation due', description: `${day(c.rotationDueAt)} (${rotationText(c)})`, icon: 'history' });
    }
    if (day(c.expiresAt) !== '') out.push({ kind: 'detail', label: 'Expires', description: day(c.expiresAt), icon: 'watch' });
    for (const f of c.fields) {
      if (!f.set) continue;
      out.push({ kind: 'detail', label: f.name, description: f.display, icon: f.sensitive ? 'lock' : 'symbol-field' });
    }
    for (const f of c.findings) {
      out.push({ kind: 'detail', label: f.field === '' ? 'Finding' : f.field, description: f.message,
                 tooltip: f.fix, icon: f.severity === 'SEVERITY_ERROR' ? 'error' : 'warning' });
    }
    for (const b of n.bindings) {
      out.push({ kind: 'detail', label: `Bound: ${b.resource}`,
                 description: String(b.state).replace(/^STATE_/, '').toLowerCase().replace(/_/g, ' '),
                 tooltip: b.note, icon: 'link' });
    }
    return out;
  }
}

export async function listAllCredentials(client: CredbrokerClient): Promise<CredentialSummary[]> {
  const out: CredentialSummary[] = [];
  let pageToken = '';
  for (let page = 0; page < 100; page++) {
    const r = await client.listCredentials({ pageSize: 1000, pageToken });
    out.push(...r.credentials);
    if (r.nextPageToken === '') break;
    pageToken = r.nextPageToken;
  }
  return out;
}
