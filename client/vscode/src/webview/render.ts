// Renders the credential form from a FormView: the request, the fields,
// the guide and the actions. Text only, as dom.ts builds it.
import type { FieldView, FileTarget, FormView } from '../form/protocol';

import { renderPin, renderScope } from './decision';
import { byId, clear, el, formatDuration, formatTime } from './dom';
import { onApprove, onApproveWithPasskey, onSave } from './submit';
import { chosenFiles, keepBox, post, setBusy, setStatus, state, targetKey, touched } from './state';
import { scheduleValidate } from './validate';

let customRows = 0;

export function render(view: FormView): void {
  state.form = view;
  state.submitted = false;
  touched.clear();
  chosenFiles.clear();
  const app = byId('app');
  if (app === null) return;
  clear(app);
  const title = view.mode === 'approve'
    ? `${view.displayName}: approve a credential request`
    : view.mode === 'update'
      ? `${view.displayName}: update ${view.profile}`
      : `${view.displayName}: add a credential`;
  app.append(el('h1', { id: 'title' }, title));
  if (view.request !== undefined) app.append(renderRequest(view));
  if (view.oauth) app.append(renderOAuth(view));

  const f = el('form', { id: 'credential-form', novalidate: true, 'aria-labelledby': 'title' });
  f.addEventListener('submit', (e) => e.preventDefault());
  if (view.mode === 'add') f.append(renderProfileInput(view));
  if (view.acceptsCredentialsFile) f.append(renderCredentialsFile());
  const fields = el('fieldset', { id: 'fields', class: 'fields' },
    el('legend', {}, view.arbitraryFields ? 'Secrets' : 'Credential'));
  for (const field of view.fields) fields.append(renderField(field));
  if (view.arbitraryFields) fields.append(renderCustomFields());
  f.append(fields);
  f.append(el('div', { id: 'form-messages', class: 'messages', 'aria-live': 'polite' }));
  f.append(el('div', { id: 'manual-checks', class: 'manual-checks' }));
  if (view.mode === 'approve') {
    f.append(renderScope(view));
    f.append(el('div', { id: 'pin-area' }));
    f.append(renderApproveActions(view));
    f.append(renderDeny());
  } else {
    f.append(renderSaveActions(view));
  }
  app.append(f);
  app.append(renderGuide(view));
  app.append(el('div', { id: 'status', class: 'status', role: 'status', 'aria-live': 'polite' }));
  if (view.mode === 'approve') renderPin(view.pin);
  const first = f.querySelector<HTMLElement>('input:not([disabled]), textarea:not([disabled])');
  first?.focus();
}

export function renderRequest(view: FormView): HTMLElement {
  const r = view.request!;
  const dl = el('dl', { class: 'request-facts' });
  const row = (label: string, value: string | Node, id?: string): void => {
    if (value === '') return;
    dl.append(el('dt', {}, label), el('dd', id === undefined ? {} : { id }, value));
  };
  row('Who asks', r.agentPeer === '' ? 'an agent the broker could not identify' : r.agentPeer,
      'request-peer');
  row('Agent session', `${r.agentSession}${r.agentConnected ? '' : ' (disconnected)'}`);
  row('Credential', `${view.displayName} (${view.provider}), profile ${view.profile}`,
      'request-credential');
  row('Action', r.action, 'request-action');
  if (r.context.length > 0) {
    const ul = el('ul', { class: 'context' });
    for (const [k, v] of r.context) ul.append(el('li', {}, `${k}: ${v}`));
    row('Context', ul);
  }
  if (r.requestedTtlSeconds > 0) row('Lifetime asked', formatDuration(r.requestedTtlSeconds));
  row('Stored credential', r.readiness === '' ? '' : r.readiness.toLowerCase().replace(/_/g, ' '));
  if (r.missingFields.length > 0) row('Missing', r.missingFields.join(', '));
  row('Asked at', formatTime(r.createdAt));
  row('Expires', formatTime(r.expiresAt));
  const section = el('section', { class: 'request', 'aria-labelledby': 'request-h' },
    el('h2', { id: 'request-h' }, 'The request'), dl);
  if (r.bindingNote !== '') section.append(el('p', { class: 'note warning' }, r.bindingNote));
  return section;
}

export function renderOAuth(view: FormView): HTMLElement {
  return el('section', { class: 'oauth', 'aria-labelledby': 'oauth-h' },
    el('h2', { id: 'oauth-h' }, `Connect ${view.displayName}`),
    el('button', { type: 'button', id: 'connect-oauth', disabled: true,
                   'aria-describedby': 'oauth-note' }, `Connect ${view.displayName}`),
    el('p', { id: 'oauth-note', class: 'hint' },
      `${view.displayName} connects through its OAuth flow, which this extension does not ` +
      'run yet: paste an access token below instead, or use credctl.'));
}

export function renderProfileInput(view: FormView): HTMLElement {
  return el('div', { class: 'field' },
    el('label', { for: 'profile' }, 'Profile'),
    el('input', { id: 'profile', type: 'text', value: view.profile || 'default',
                  autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'profile-hint' }),
    el('div', { id: 'profile-hint', class: 'hint' },
      'A name for this set of credentials; "default" is used when a request names none.'),
    el('div', { id: 'msg-profile', class: 'msg' }));
}

export function fileControls(target: FileTarget, buttonLabel: string, describedBy: string): HTMLElement {
  const key = targetKey(target);
  const chosen = el('span', { class: 'file-name', id: `file-${key}` });
  const pick = el('button', { type: 'button', class: 'secondary', id: `pick-${key}`,
                              'aria-describedby': describedBy }, buttonLabel);
  pick.addEventListener('click', () => post({ type: 'pickFile', target }));
  const clearBtn = el('button', { type: 'button', class: 'secondary', id: `clear-${key}`,
                                  hidden: true }, 'Clear file');
  clearBtn.addEventListener('click', () => post({ type: 'clearFile', target }));
  return el('div', { class: 'file-controls' }, pick, ' ', chosen, ' ', clearBtn);
}

export function renderCredentialsFile(): HTMLElement {
  return el('div', { class: 'field credentials-file' },
    el('div', { class: 'label' }, 'From a JSON file'),
    fileControls({ credentialsFile: true }, 'Import from a JSON file…', 'credentials-file-hint'),
    el('div', { id: 'credentials-file-hint', class: 'hint' },
      'A JSON file holding the fields below (e.g. the output of the provider\'s CLI). ' +
      'Fields you type take precedence over the file\'s.'),
    el('div', { id: 'msg-from_file', class: 'msg' }));
}

export function renderField(f: FieldView): HTMLElement {
  const id = `f-${f.name}`;
  const hintId = `hint-${f.name}`;
  const msgId = `msg-${f.name}`;
  const tags: string[] = [];
  if (f.optional) tags.push('optional');
  if (f.derived) tags.push('read from the key file when left empty');
  const label = el('label', { for: id }, f.label,
    tags.length > 0 ? el('span', { class: 'tag' }, ` (${tags.join('; ')})`) : null);
  const wrap = el('div', { class: 'field', 'data-field': f.name }, label);

  const input = fieldInput(f, id, `${hintId} ${msgId}`);
  if (f.sensitive && f.isSet) wrap.append(keepCurrentControl(f, input));
  wrap.append(input);
  if (f.sensitive && !f.multiline) wrap.append(' ', showButton(f, id, input));
  if (f.jsonKeyFile) wrap.append(fileControls({ field: f.name }, 'Choose key file…', hintId));
  if (f.generatable) wrap.append(generateControl(f, input));
  wrap.append(el('div', { id: hintId, class: 'hint' }, f.formatHint));
  if (f.derived) wrap.append(el('div', { id: `derived-${f.name}`, class: 'derived' }));
  wrap.append(el('div', { id: msgId, class: 'msg' }));
  return wrap;
}

type FieldInput = HTMLInputElement | HTMLTextAreaElement;

// The field's input (a textarea for a multi-line one), shown with its
// non-secret current value or a placeholder; typing validates.
function fieldInput(f: FieldView, id: string, describedBy: string): FieldInput {
  const stored = f.sensitive ? f.isSet : f.currentValue !== '';
  const input = f.multiline
    ? el('textarea', { id, rows: '6', autocomplete: 'off', spellcheck: 'false',
                       'aria-describedby': describedBy, class: f.sensitive ? 'secret' : '' })
    : el('input', { id, type: f.sensitive ? 'password' : 'text', autocomplete: 'off',
                    spellcheck: 'false', 'aria-describedby': describedBy });
  if (!f.sensitive && f.currentValue !== '') input.value = f.currentValue;
  if (f.defaultValue !== '' && !stored) input.setAttribute('placeholder', f.defaultValue);
  if (f.derived) input.setAttribute('placeholder', 'read from the key file');
  input.addEventListener('input', () => {
    touched.add(f.name);
    scheduleValidate();
  });
  return input;
}

// A stored secret's masked value and its "Keep current" box, checked: the
// input stays disabled until it is unchecked.
function keepCurrentControl(f: FieldView, input: FieldInput): HTMLElement {
  const keep = el('input', { type: 'checkbox', id: `keep-${f.name}`, checked: true });
  keep.addEventListener('change', () => {
    input.disabled = keep.checked;
    if (keep.checked) input.value = '';
    else input.focus();
    scheduleValidate();
  });
  input.disabled = true;
  return el('div', { class: 'stored' },
    el('span', { class: 'masked', id: `masked-${f.name}` },
      `Stored: ${f.maskedDisplay !== '' ? f.maskedDisplay : '••••••'}`),
    ' ', keep, el('label', { for: `keep-${f.name}` }, 'Keep current'));
}

// Show / Hide for a one-line secret input.
function showButton(f: FieldView, id: string, input: FieldInput): HTMLElement {
  const show = el('button', { type: 'button', class: 'secondary small', id: `show-${f.name}`,
                              'aria-pressed': 'false', 'aria-controls': id }, 'Show');
  show.addEventListener('click', () => {
    const i = input as HTMLInputElement;
    const hidden = i.type === 'password';
    i.type = hidden ? 'text' : 'password';
    show.textContent = hidden ? 'Hide' : 'Show';
    show.setAttribute('aria-pressed', String(hidden));
  });
  return show;
}

// "Let the broker generate a strong one": checked, the input is emptied and
// disabled.
function generateControl(f: FieldView, input: FieldInput): HTMLElement {
  const gen = el('input', { type: 'checkbox', id: `gen-${f.name}` });
  gen.addEventListener('change', () => {
    input.disabled = gen.checked || (keepBox(f.name)?.checked ?? false);
    if (gen.checked) input.value = '';
    scheduleValidate();
  });
  return el('div', { class: 'generate' }, gen,
    el('label', { for: `gen-${f.name}` }, 'Let the broker generate a strong one'));
}

export function renderCustomFields(): HTMLElement {
  const list = el('div', { id: 'custom-fields' });
  const add = el('button', { type: 'button', class: 'secondary', id: 'add-custom' }, 'Add a secret');
  add.addEventListener('click', () => {
    list.append(customRow());
    list.querySelector<HTMLInputElement>('.custom-row:last-child input')?.focus();
  });
  list.append(customRow());
  return el('div', { class: 'custom' }, list, add,
    el('div', { class: 'hint' }, 'Names: letters, digits and underscores, e.g. STRIPE_API_KEY.'));
}

export function customRow(): HTMLElement {
  const n = customRows++;
  const name = el('input', { type: 'text', id: `custom-name-${n}`, class: 'custom-name',
                             autocomplete: 'off', spellcheck: 'false' });
  const value = el('input', { type: 'password', id: `custom-value-${n}`, class: 'custom-value',
                              autocomplete: 'off', spellcheck: 'false' });
  const remove = el('button', { type: 'button', class: 'secondary small' }, 'Remove');
  const row = el('div', { class: 'custom-row' },
    el('label', { for: `custom-name-${n}` }, 'Name'), name,
    el('label', { for: `custom-value-${n}` }, 'Value'), value, remove);
  remove.addEventListener('click', () => {
    row.remove();
    scheduleValidate();
  });
  for (const i of [name, value]) i.addEventListener('input', () => scheduleValidate());
  return row;
}

export function renderApproveActions(view: FormView): HTMLElement {
  const approve = el('button', { type: 'button', id: 'approve', class: 'primary' }, 'Approve');
  approve.addEventListener('click', onApprove);
  const actions = el('div', { class: 'actions' }, approve);
  if (view.passkeyApproval) {
    // WebAuthn does not run in a webview: the extension opens the ceremony
    // in the browser; the PIN is not needed.
    const passkey = el('button', { type: 'button', id: 'approve-passkey', class: 'secondary',
                                   'aria-describedby': 'passkey-hint' }, 'Approve with passkey');
    passkey.addEventListener('click', onApproveWithPasskey);
    const cancel = el('button', { type: 'button', id: 'cancel-passkey', class: 'secondary', hidden: true },
      'Cancel passkey');
    cancel.addEventListener('click', () => post({ type: 'cancelPasskey' }));
    actions.append(' ', passkey, ' ', cancel, el('div', { id: 'passkey-hint', class: 'hint' },
      'Instead of the PIN: opens a page in your browser that asks for your passkey.'));
  }
  return actions;
}

export function renderDeny(): HTMLElement {
  const reason = el('input', { type: 'text', id: 'deny-reason', autocomplete: 'off',
                               'aria-describedby': 'deny-hint' });
  const deny = el('button', { type: 'button', id: 'deny', class: 'secondary' }, 'Deny');
  deny.addEventListener('click', () => {
    if (state.busy) return;
    setBusy(true);
    setStatus('Denying…');
    post({ type: 'deny', reason: reason.value.trim() });
  });
  reason.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      deny.click();
    }
  });
  return el('fieldset', { class: 'deny' }, el('legend', {}, 'Or deny'),
    el('label', { for: 'deny-reason' }, 'Reason (the agent sees it)'), reason, ' ', deny,
    el('div', { id: 'deny-hint', class: 'hint' }, 'e.g. "wrong account" or "not now".'));
}

export function renderSaveActions(view: FormView): HTMLElement {
  const save = el('button', { type: 'button', id: 'save', class: 'primary' },
    view.mode === 'add' ? 'Save credential' : 'Save new version');
  save.addEventListener('click', onSave);
  const cancel = el('button', { type: 'button', id: 'cancel', class: 'secondary' }, 'Cancel');
  cancel.addEventListener('click', () => post({ type: 'close' }));
  return el('div', { class: 'actions' }, save, ' ', cancel);
}

export function renderGuide(view: FormView): HTMLElement {
  const guide = el('section', { class: 'guide', 'aria-labelledby': 'guide-h' },
    el('h2', { id: 'guide-h' }, 'How to get them'));
  if (view.howToGet.length > 0) {
    const ol = el('ol', { id: 'how-to-get' });
    for (const step of view.howToGet) ol.append(el('li', {}, step));
    guide.append(ol);
  }
  if (view.requiredPermissions.length > 0) {
    const ul = el('ul', { id: 'required-permissions' });
    for (const p of view.requiredPermissions) ul.append(el('li', {}, p));
    guide.append(el('h3', {}, 'Required permissions'), ul);
  }
  if (view.notes.length > 0) {
    const ul = el('ul', { id: 'notes' });
    for (const n of view.notes) ul.append(el('li', {}, n));
    guide.append(el('h3', {}, 'Notes'), ul);
  }
  if (view.troubleshooting.length > 0) {
    const ul = el('ul', { id: 'troubleshooting' });
    for (const t of view.troubleshooting) ul.append(el('li', {}, t));
    guide.append(el('details', {}, el('summary', {}, 'Troubleshooting'), ul));
  }
  return guide;
}
