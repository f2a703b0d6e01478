// The credential form, running inside the webview. It renders the FormView
// the extension sends, validates as the person types (through the
// extension), and posts approve / deny / save. It talks only through
// acquireVsCodeApi().postMessage and the window's message event.
//
// Every text from the broker goes into the page as textContent or an
// attribute value, never as markup. Secret values live in the inputs only:
// never in setState, never logged; the inputs are emptied once the
// extension says the submit went through. "Approve with passkey" posts the
// same decision without the PIN: the extension runs the WebAuthn ceremony
// in the browser, since it does not run in a webview.
//
// This file is the entry point (esbuild bundles it into media/form.js): the
// extension's messages. render.ts draws the form, decision.ts the scope and
// PIN, validate.ts and messages.ts the live validation, submit.ts the
// decisions, state.ts the shared state and the channel to the extension.
import type { ToWebview } from '../form/protocol';

import { renderPin } from './decision';
import { byId, clear, el } from './dom';
import { showFindings, showViolations } from './messages';
import { render } from './render';
import { chosenFiles, inputOf, keepBox, post, setBusy, setStatus, state, targetKey, touched } from './state';
import { clearPinInputs, clearSecrets, setPasskeyWaiting } from './submit';
import { scheduleValidate, setValidating } from './validate';

type Message<K extends ToWebview['type']> = Extract<ToWebview, { type: K }>;

function onMessage(m: ToWebview): void {
  switch (m.type) {
    case 'init':
      render(m.form);
      break;
    case 'validation':
      onValidation(m);
      break;
    case 'validationFailed':
      if (m.seq !== state.validateSeq || state.validateTimer !== undefined) return;
      setValidating(false);
      showViolations(m.violations, m.message);
      break;
    case 'fileChosen':
      onFileChosen(m);
      break;
    case 'fileCleared':
      onFileCleared(m);
      break;
    case 'busy':
      setStatus(m.what);
      break;
    case 'failed':
      setBusy(false);
      setPasskeyWaiting(false);
      clearPinInputs();
      showViolations(m.violations, m.violations.length === 0 ? m.message : '');
      setStatus(m.violations.length === 0 ? m.message : `${m.message}: see the fields marked.`,
        'error');
      break;
    case 'pin':
      renderPin(m.pin);
      break;
    case 'done':
      setPasskeyWaiting(false);
      clearSecrets();
      setBusy(true);
      setStatus(m.message, 'ok');
      byId('app')?.setAttribute('data-outcome', m.outcome);
      break;
    case 'resolved':
      setPasskeyWaiting(false);
      clearSecrets();
      setBusy(true);
      setStatus(m.message, 'info');
      byId('app')?.setAttribute('data-outcome', 'resolved');
      break;
  }
}

// The findings of the latest validation, the values derived from a key
// file, and the checks to make by hand.
function onValidation(m: Message<'validation'>): void {
  if (m.seq !== state.validateSeq || state.validateTimer !== undefined) return;  // A newer one is on its way.
  setValidating(false);
  showFindings(m.findings, m.missingFields);
  for (const [name, value] of m.derived) {
    const d = byId(`derived-${name}`);
    if (d !== null) d.textContent = value === '' ? '' : `From the key file: ${value}`;
  }
  const mc = byId('manual-checks');
  if (mc !== null) {
    clear(mc);
    if (m.manualChecks.length > 0 && m.valid) {
      const ul = el('ul');
      for (const c of m.manualChecks) ul.append(el('li', {}, c));
      mc.append(el('details', {}, el('summary', {}, 'Check by hand in the provider\'s console'), ul));
    }
  }
}

// A file chosen for a field (whose input it replaces) or for the form.
function onFileChosen(m: Message<'fileChosen'>): void {
  const key = targetKey(m.target);
  chosenFiles.set(key, m.name);
  const label = byId(`file-${key}`);
  if (label !== null) label.textContent = `${m.name} (${m.bytes} bytes)`;
  const clearBtn = byId(`clear-${key}`);
  if (clearBtn !== null) clearBtn.hidden = false;
  if ('field' in m.target) {
    const input = inputOf(m.target.field);
    if (input !== null) {
      input.value = '';
      input.disabled = true;
      input.setAttribute('placeholder', `from ${m.name}`);
    }
    touched.add(m.target.field);
  }
  scheduleValidate();
}

function onFileCleared(m: Message<'fileCleared'>): void {
  const key = targetKey(m.target);
  chosenFiles.delete(key);
  const label = byId(`file-${key}`);
  if (label !== null) label.textContent = '';
  const clearBtn = byId(`clear-${key}`);
  if (clearBtn !== null) clearBtn.hidden = true;
  if ('field' in m.target) {
    const input = inputOf(m.target.field);
    if (input !== null) {
      input.disabled = keepBox(m.target.field)?.checked ?? false;
      input.removeAttribute('placeholder');
    }
  }
  scheduleValidate();
}

window.addEventListener('message', (e: MessageEvent) => {
  const data = e.data as ToWebview | undefined;
  if (data !== undefined && typeof data === 'object' && typeof data.type === 'string') onMessage(data);
});
post({ type: 'ready' });
