// The approval's own controls: the scope (once, session, standing; the
// lifetime and the action pattern) and the approval PIN.
import type { FormView, PinView, ScopeName } from '../form/protocol';

import { byId, clear, el, formatDuration, formatTime } from './dom';
import { state } from './state';

export function renderScope(view: FormView): HTMLElement {
  const r = view.request!;
  const fs = el('fieldset', { id: 'scope', class: 'scope' }, el('legend', {}, 'Approve for'));
  const options: Array<[ScopeName, string, string]> = [
    ['once', 'This request only', 'One grant for this need.'],
    ['session', 'This agent session', 'Grants for the same credential while the agent\'s session lasts.'],
    ['standing', 'Standing approval',
     'Future requests for this credential whose action matches the pattern are granted without asking.'],
  ];
  for (const [value, label, hint] of options) {
    const radio = el('input', { type: 'radio', name: 'scope', id: `scope-${value}`, value,
                                checked: value === 'once', 'aria-describedby': `scope-${value}-hint` });
    radio.addEventListener('change', updateScopeControls);
    fs.append(el('div', { class: 'radio' }, radio, el('label', { for: `scope-${value}` }, label),
      el('span', { id: `scope-${value}-hint`, class: 'hint inline' }, ` ${hint}`)));
  }
  const pattern = el('input', { type: 'text', id: 'action-pattern', value: r.action,
                                autocomplete: 'off', spellcheck: 'false',
                                'aria-describedby': 'action-pattern-hint msg-action_pattern' });
  fs.append(el('div', { class: 'field', id: 'pattern-field', hidden: true },
    el('label', { for: 'action-pattern' }, 'Action pattern'), pattern,
    el('div', { id: 'action-pattern-hint', class: 'hint' },
      '"*" matches any text, e.g. "deploy *". Requests whose action matches are granted.'),
    el('div', { id: 'msg-action_pattern', class: 'msg' })));
  const ttl = el('input', { type: 'text', id: 'ttl', autocomplete: 'off', spellcheck: 'false',
                            value: formatDuration(r.requestedTtlSeconds),
                            'aria-describedby': 'ttl-hint msg-ttl' });
  fs.append(el('div', { class: 'field' },
    el('label', { for: 'ttl', id: 'ttl-label' }, 'Lifetime'), ttl,
    el('div', { id: 'ttl-hint', class: 'hint' },
      'e.g. 15m, 2h, 30d; empty: the broker\'s default for the scope.'),
    el('div', { id: 'msg-ttl', class: 'msg' })));
  return fs;
}

export function selectedScope(): ScopeName {
  const r = document.querySelector<HTMLInputElement>('input[name="scope"]:checked');
  return (r?.value as ScopeName | undefined) ?? 'once';
}

export function updateScopeControls(): void {
  const standing = selectedScope() === 'standing';
  const pf = byId('pattern-field');
  if (pf !== null) pf.hidden = !standing;
  const label = byId('ttl-label');
  if (label !== null) label.textContent = standing ? 'Standing approval lasts' : 'Lifetime';
}

export function pinInput(id: string, label: string, describedBy: string, autocomplete: string): HTMLElement {
  return el('div', { class: 'field' },
    el('label', { for: id }, label),
    el('input', { type: 'password', id, autocomplete, 'aria-describedby': describedBy }));
}

export function renderPin(pin: PinView): void {
  if (state.form !== undefined) state.form.pin = pin;
  const area = byId('pin-area');
  if (area === null) return;
  clear(area);
  const fs = el('fieldset', { class: 'pin', id: 'pin-fieldset' });
  if (pin.known && !pin.pinSet) {
    fs.append(el('legend', {}, pin.required ? 'Choose an approval PIN' : 'Choose an approval PIN (optional)'),
      el('p', { class: 'hint', id: 'new-pin-hint' },
        pin.required
          ? 'Every approval needs a PIN that only you know, so that a program running as you cannot ' +
            'approve on its own. Choose one now (4 to 128 characters); you will type it for each approval.'
          : 'The broker does not require a PIN. Choosing one (4 to 128 characters) makes every ' +
            'approval ask for it; leave these empty to approve without.'),
      pinInput('new-pin', 'New PIN', 'new-pin-hint msg-new_pin', 'new-password'),
      pinInput('new-pin-repeat', 'Repeat the PIN', 'msg-new_pin', 'new-password'),
      el('div', { id: 'msg-new_pin', class: 'msg' }));
    if (pin.firstPinNeedsPassphrase) {
      fs.append(pinInput('store-passphrase', 'The store\'s passphrase', 'store-passphrase-hint msg-store_passphrase', 'off'),
        el('div', { id: 'store-passphrase-hint', class: 'hint' },
          'The passphrase credbrokerd was started with: it shows that you, who own the store, choose the first PIN.'),
        el('div', { id: 'msg-store_passphrase', class: 'msg' }));
    }
  } else {
    const windowOpen = pin.windowUntil !== '';
    fs.append(el('legend', {}, 'Approval PIN'),
      pinInput('pin', pin.known && !windowOpen ? 'PIN' : 'PIN (if asked for)', 'pin-hint msg-pin', 'off'),
      el('div', { id: 'pin-hint', class: 'hint' },
        windowOpen ? `Not needed until ${formatTime(pin.windowUntil)}: a correct PIN opened a short window.`
          : pin.failedAttempts > 0 ? `${pin.failedAttempts} wrong PIN(s) since the last right one.` : ''),
      el('div', { id: 'msg-pin', class: 'msg' }));
  }
  if (pin.lockedUntil !== '') {
    fs.append(el('p', { class: 'msg error', id: 'pin-locked' },
      `Approvals are locked after too many wrong PINs, until ${formatTime(pin.lockedUntil)}.`));
  }
  area.append(fs);
}
