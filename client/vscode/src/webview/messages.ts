// Messages beside the fields: the broker's findings while typing, its
// field violations after a submit.
import type { FindingView, ViolationView } from '../form/protocol';

import { byId, clear, el, fieldOf } from './dom';
import { inputOf, state, touched } from './state';

export function clearMessages(): void {
  for (const m of Array.from(document.querySelectorAll('.msg'))) {
    if (m.id === 'pin-locked') continue;
    m.textContent = '';
    m.className = 'msg';
  }
  for (const i of Array.from(document.querySelectorAll('[aria-invalid]'))) {
    i.removeAttribute('aria-invalid');
  }
  const general = byId('form-messages');
  if (general !== null) clear(general);
}

export function fieldMessageTarget(field: string): { msg: HTMLElement | null; input: HTMLElement | null } {
  const name = fieldOf(field);
  switch (name) {
    case 'pin':
    case 'current_pin':
      return { msg: byId('msg-pin'), input: byId('pin') };
    case 'new_pin':
      return { msg: byId('msg-new_pin'), input: byId('new-pin') };
    case 'store_passphrase':
      return { msg: byId('msg-store_passphrase'), input: byId('store-passphrase') };
    case 'ttl':
      return { msg: byId('msg-ttl'), input: byId('ttl') };
    case 'action_pattern':
      return { msg: byId('msg-action_pattern'), input: byId('action-pattern') };
    case 'profile':
      return { msg: byId('msg-profile'), input: byId('profile') };
    case 'from_file':
      return { msg: byId('msg-from_file') ?? byId('msg-service_account_json'), input: null };
    default:
      return { msg: byId(`msg-${name}`), input: inputOf(name) };
  }
}

export function addMessage(field: string, severity: FindingView['severity'], text: string): void {
  const { msg, input } = fieldMessageTarget(field);
  if (msg === null) {
    const general = byId('form-messages');
    general?.append(el('p', { class: `msg ${severity}` },
      field === '' ? text : `${fieldOf(field)}: ${text}`));
    return;
  }
  const line = el('span', { class: `line ${severity}` }, text);
  if (msg.textContent !== '') msg.append(el('br'));
  msg.append(line);
  msg.classList.add(severity);
  if (severity === 'error' && input !== null) input.setAttribute('aria-invalid', 'true');
}

// Findings of a live validation. Until the person tries to submit, only the
// fields they typed in get messages.
export function showFindings(findings: FindingView[], missing: string[]): void {
  clearMessages();
  for (const f of findings) {
    const name = fieldOf(f.field);
    if (!state.submitted && name !== '' && name !== 'from_file' && !touched.has(name) &&
        f.severity !== 'error') {
      continue;
    }
    if (!state.submitted && name !== '' && !touched.has(name) && f.code.startsWith('missing')) continue;
    addMessage(f.field, f.severity, f.fix === '' ? f.message : `${f.message} ${f.fix}`);
  }
  if (state.submitted) {
    for (const m of missing) {
      if (!findings.some((f) => fieldOf(f.field) === m)) addMessage(m, 'error', 'Required.');
    }
  }
}

export function showViolations(violations: ViolationView[], fallback: string): void {
  clearMessages();
  for (const v of violations) addMessage(v.field, 'error', v.description);
  if (violations.length === 0 && fallback !== '') addMessage('', 'error', fallback);
  const firstInvalid = document.querySelector<HTMLElement>('[aria-invalid="true"]');
  firstInvalid?.focus();
}
