// The credential form's state in the webview, and its one channel to the
// extension. Secret values are never kept here: they live in the inputs.
import type { FileTarget, FormView, FromWebview } from '../form/protocol';

import { byId } from './dom';

interface VsCodeApi {
  postMessage(message: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
export const post = (m: FromWebview): void => vscode.postMessage(m);

export const state: {
  form: FormView | undefined;
  validateSeq: number;
  validateTimer: ReturnType<typeof setTimeout> | undefined;
  // The person tried to submit: every finding is shown, not only those of
  // fields they typed in.
  submitted: boolean;
  busy: boolean;
} = { form: undefined, validateSeq: 0, validateTimer: undefined, submitted: false, busy: false };
export const touched = new Set<string>();
export const chosenFiles = new Map<string, string>();  // target key -> file name

export function targetKey(t: FileTarget): string {
  return 'field' in t ? `field:${t.field}` : 'credentials-file';
}

export function inputOf(name: string): HTMLInputElement | HTMLTextAreaElement | null {
  return byId<HTMLInputElement | HTMLTextAreaElement>(`f-${name}`);
}

export function keepBox(name: string): HTMLInputElement | null {
  return byId<HTMLInputElement>(`keep-${name}`);
}

export function generateBox(name: string): HTMLInputElement | null {
  return byId<HTMLInputElement>(`gen-${name}`);
}

export function setStatus(text: string, kind: 'info' | 'error' | 'ok' = 'info'): void {
  const s = byId('status');
  if (s === null) return;
  s.textContent = text;
  s.className = `status ${kind}`;
}

export function setBusy(b: boolean): void {
  state.busy = b;
  for (const id of ['approve', 'approve-passkey', 'deny', 'save']) {
    const btn = byId<HTMLButtonElement>(id);
    if (btn !== null) btn.disabled = b;
  }
  byId('app')?.setAttribute('aria-busy', String(b));
}
