// The credential form, running inside the webview. It renders the FormView
// the extension sends, validates as the person types (through the
// extension), and posts approve / deny / save. It talks only through
// acquireVsCodeApi().postMessage and the window's message event.
//
// Every text from the broker goes into the page as textContent or an
// attribute value, never as markup. Secret values live in the inputs only:
// never in setState, never logged; the inputs are emptied once the
// extension says the submit went through.
import type {
  FieldView,
  FileTarget,
  FindingView,
  FormView,
  FromWebview,
  PinView,
  ScopeName,
  ToWebview,
  ViolationView,
} from '../form/protocol';

interface VsCodeApi {
  postMessage(message: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const post = (m: FromWebview): void => vscode.postMessage(m);

// --- DOM helpers: text only -------------------------------------------------

type Attrs = Record<string, string | boolean | undefined>;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K, attrs: Attrs = {}, ...children: Array<Node | string | null | undefined>
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return e;
}

function clear(e: Element): void {
  while (e.firstChild) e.removeChild(e.firstChild);
}

function byId<T extends HTMLElement>(id: string): T | null {
  return document.getElementById(id) as T | null;
}

// Field names as the broker reports them: "values.access_key_id" in a
// violation, "access_key_id" in a finding.
function fieldOf(name: string): string {
  return name.startsWith('values.') ? name.slice('values.'.length) : name;
}

function formatTime(iso: string): string {
  if (iso === '') return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function formatDuration(seconds: number): string {
  if (seconds <= 0) return '';
  if (seconds % 86400 === 0) return `${seconds / 86400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

// "90s", "15m", "2h", "30d", "1h30m"; "" is 0 (the broker's default).
// undefined when it cannot be read.
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (t === '') return 0;
  const re = /(\d+)\s*([smhd])/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(t)) !== null) {
    total += Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'];
    end = re.lastIndex;
  }
  return end === t.length && total > 0 ? total : undefined;
}

// --- State -------------------------------------------------------------------

let form: FormView | undefined;
let validateSeq = 0;
let validateTimer: ReturnType<typeof setTimeout> | undefined;
let submitted = false;
let busy = false;
const touched = new Set<string>();
const chosenFiles = new Map<string, string>();  // target key -> file name
let customRows = 0;

function targetKey(t: FileTarget): string {
  return 'field' in t ? `field:${t.field}` : 'credentials-file';
}

function inputOf(name: string): HTMLInputElement | HTMLTextAreaElement | null {
  return byId<HTMLInputElement | HTMLTextAreaElement>(`f-${name}`);
}

function keepBox(name: string): HTMLInputElement | null {
  return byId<HTMLInputElement>(`keep-${name}`);
}

function generateBox(name: string): HTMLInputElement | null {
  return byId<HTMLInputElement>(`gen-${name}`);
}

function setStatus(text: string, kind: 'info' | 'error' | 'ok' = 'info'): void {
  const s = byId('status');
  if (s === null) return;
  s.textContent = text;
  s.className = `status ${kind}`;
}

// --- Rendering -----------------------------------------------------------------

function render(view: FormView): void {
  form = view;
  submitted = false;
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
    f.append(renderApproveActions());
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

function renderRequest(view: FormView): HTMLElement {
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

function renderOAuth(view: FormView): HTMLElement {
  return el('section', { class: 'oauth', 'aria-labelledby': 'oauth-h' },
    el('h2', { id: 'oauth-h' }, `Connect ${view.displayName}`),
    el('button', { type: 'button', id: 'connect-oauth', disabled: true,
                   'aria-describedby': 'oauth-note' }, `Connect ${view.displayName}`),
    el('p', { id: 'oauth-note', class: 'hint' },
      `${view.displayName} connects through its OAuth flow, which this extension does not ` +
      'run yet: paste an access token below instead, or use credctl.'));
}

function renderProfileInput(view: FormView): HTMLElement {
  return el('div', { class: 'field' },
    el('label', { for: 'profile' }, 'Profile'),
    el('input', { id: 'profile', type: 'text', value: view.profile || 'default',
                  autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'profile-hint' }),
    el('div', { id: 'profile-hint', class: 'hint' },
      'A name for this set of credentials; "default" is used when a request names none.'),
    el('div', { id: 'msg-profile', class: 'msg' }));
}

function fileControls(target: FileTarget, buttonLabel: string, describedBy: string): HTMLElement {
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

function renderCredentialsFile(): HTMLElement {
  return el('div', { class: 'field credentials-file' },
    el('div', { class: 'label' }, 'From a JSON file'),
    fileControls({ credentialsFile: true }, 'Import from a JSON file…', 'credentials-file-hint'),
    el('div', { id: 'credentials-file-hint', class: 'hint' },
      'A JSON file holding the fields below (e.g. the output of the provider\'s CLI). ' +
      'Fields you type take precedence over the file\'s.'),
    el('div', { id: 'msg-from_file', class: 'msg' }));
}

function renderField(f: FieldView): HTMLElement {
  const id = `f-${f.name}`;
  const hintId = `hint-${f.name}`;
  const msgId = `msg-${f.name}`;
  const tags: string[] = [];
  if (f.optional) tags.push('optional');
  if (f.derived) tags.push('read from the key file when left empty');
  const label = el('label', { for: id }, f.label,
    tags.length > 0 ? el('span', { class: 'tag' }, ` (${tags.join('; ')})`) : null);
  const wrap = el('div', { class: 'field', 'data-field': f.name }, label);

  const stored = f.sensitive ? f.isSet : f.currentValue !== '';
  const input = f.multiline
    ? el('textarea', { id, rows: '6', autocomplete: 'off', spellcheck: 'false',
                       'aria-describedby': `${hintId} ${msgId}`, class: f.sensitive ? 'secret' : '' })
    : el('input', { id, type: f.sensitive ? 'password' : 'text', autocomplete: 'off',
                    spellcheck: 'false', 'aria-describedby': `${hintId} ${msgId}` });
  if (!f.sensitive && f.currentValue !== '') input.value = f.currentValue;
  if (f.defaultValue !== '' && !stored) input.setAttribute('placeholder', f.defaultValue);
  if (f.derived) input.setAttribute('placeholder', 'read from the key file');
  input.addEventListener('input', () => {
    touched.add(f.name);
    scheduleValidate();
  });

  if (f.sensitive && f.isSet) {
    const keep = el('input', { type: 'checkbox', id: `keep-${f.name}`, checked: true });
    keep.addEventListener('change', () => {
      input.disabled = keep.checked;
      if (keep.checked) input.value = '';
      else input.focus();
      scheduleValidate();
    });
    input.disabled = true;
    wrap.append(el('div', { class: 'stored' },
      el('span', { class: 'masked', id: `masked-${f.name}` },
        `Stored: ${f.maskedDisplay !== '' ? f.maskedDisplay : '••••••'}`),
      ' ', keep, el('label', { for: `keep-${f.name}` }, 'Keep current')));
  }
  wrap.append(input);
  if (f.sensitive && !f.multiline) {
    const show = el('button', { type: 'button', class: 'secondary small', id: `show-${f.name}`,
                                'aria-pressed': 'false', 'aria-controls': id }, 'Show');
    show.addEventListener('click', () => {
      const i = input as HTMLInputElement;
      const hidden = i.type === 'password';
      i.type = hidden ? 'text' : 'password';
      show.textContent = hidden ? 'Hide' : 'Show';
      show.setAttribute('aria-pressed', String(hidden));
    });
    wrap.append(' ', show);
  }
  if (f.jsonKeyFile) wrap.append(fileControls({ field: f.name }, 'Choose key file…', hintId));
  if (f.generatable) {
    const gen = el('input', { type: 'checkbox', id: `gen-${f.name}` });
    gen.addEventListener('change', () => {
      input.disabled = gen.checked || (keepBox(f.name)?.checked ?? false);
      if (gen.checked) input.value = '';
      scheduleValidate();
    });
    wrap.append(el('div', { class: 'generate' }, gen,
      el('label', { for: `gen-${f.name}` }, 'Let the broker generate a strong one')));
  }
  wrap.append(el('div', { id: hintId, class: 'hint' }, f.formatHint));
  if (f.derived) wrap.append(el('div', { id: `derived-${f.name}`, class: 'derived' }));
  wrap.append(el('div', { id: msgId, class: 'msg' }));
  return wrap;
}

function renderCustomFields(): HTMLElement {
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

function customRow(): HTMLElement {
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

function renderScope(view: FormView): HTMLElement {
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

function selectedScope(): ScopeName {
  const r = document.querySelector<HTMLInputElement>('input[name="scope"]:checked');
  return (r?.value as ScopeName | undefined) ?? 'once';
}

function updateScopeControls(): void {
  const standing = selectedScope() === 'standing';
  const pf = byId('pattern-field');
  if (pf !== null) pf.hidden = !standing;
  const label = byId('ttl-label');
  if (label !== null) label.textContent = standing ? 'Standing approval lasts' : 'Lifetime';
}

function pinInput(id: string, label: string, describedBy: string, autocomplete: string): HTMLElement {
  return el('div', { class: 'field' },
    el('label', { for: id }, label),
    el('input', { type: 'password', id, autocomplete, 'aria-describedby': describedBy }));
}

function renderPin(pin: PinView): void {
  if (form !== undefined) form.pin = pin;
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

function renderApproveActions(): HTMLElement {
  const approve = el('button', { type: 'button', id: 'approve', class: 'primary' }, 'Approve');
  approve.addEventListener('click', onApprove);
  return el('div', { class: 'actions' }, approve);
}

function renderDeny(): HTMLElement {
  const reason = el('input', { type: 'text', id: 'deny-reason', autocomplete: 'off',
                               'aria-describedby': 'deny-hint' });
  const deny = el('button', { type: 'button', id: 'deny', class: 'secondary' }, 'Deny');
  deny.addEventListener('click', () => {
    if (busy) return;
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

function renderSaveActions(view: FormView): HTMLElement {
  const save = el('button', { type: 'button', id: 'save', class: 'primary' },
    view.mode === 'add' ? 'Save credential' : 'Save new version');
  save.addEventListener('click', onSave);
  const cancel = el('button', { type: 'button', id: 'cancel', class: 'secondary' }, 'Cancel');
  cancel.addEventListener('click', () => post({ type: 'close' }));
  return el('div', { class: 'actions' }, save, ' ', cancel);
}

function renderGuide(view: FormView): HTMLElement {
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

// --- Values -------------------------------------------------------------------

interface Collected {
  values: Record<string, string>;
  keep: string[];
  generate: string[];
}

function collect(): Collected {
  const out: Collected = { values: {}, keep: [], generate: [] };
  if (form === undefined) return out;
  for (const f of form.fields) {
    if (keepBox(f.name)?.checked) {
      out.keep.push(f.name);
      continue;
    }
    if (generateBox(f.name)?.checked) {
      out.generate.push(f.name);
      continue;
    }
    const input = inputOf(f.name);
    if (input === null) continue;
    const v = input.value;
    if (v === '') continue;
    // An unchanged stored non-sensitive value need not be sent again.
    if (!f.sensitive && v === f.currentValue && form.mode !== 'add') {
      out.keep.push(f.name);
      continue;
    }
    out.values[f.name] = v;
  }
  if (form.arbitraryFields) {
    for (const row of Array.from(document.querySelectorAll('.custom-row'))) {
      const name = row.querySelector<HTMLInputElement>('.custom-name')?.value.trim() ?? '';
      const value = row.querySelector<HTMLInputElement>('.custom-value')?.value ?? '';
      if (name !== '' && value !== '') out.values[name] = value;
    }
  }
  return out;
}

function hasInput(c: Collected): boolean {
  return Object.keys(c.values).length > 0 || c.generate.length > 0 || chosenFiles.size > 0;
}

// While a validation is scheduled or on its way, #app carries
// data-validating (tests and assistive styling can wait on it).
function setValidating(on: boolean): void {
  const app = byId('app');
  if (on) app?.setAttribute('data-validating', 'true');
  else app?.removeAttribute('data-validating');
}

function scheduleValidate(): void {
  if (validateTimer !== undefined) clearTimeout(validateTimer);
  setValidating(true);
  validateTimer = setTimeout(runValidate, 300);
}

function runValidate(): void {
  validateTimer = undefined;
  const c = collect();
  if (!hasInput(c)) {
    showFindings([], []);
    setValidating(false);
    return;
  }
  validateSeq += 1;
  post({ type: 'validate', seq: validateSeq, values: c.values, keep: c.keep });
}

// --- Messages on fields --------------------------------------------------------

function clearMessages(): void {
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

function fieldMessageTarget(field: string): { msg: HTMLElement | null; input: HTMLElement | null } {
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

function addMessage(field: string, severity: FindingView['severity'], text: string): void {
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
function showFindings(findings: FindingView[], missing: string[]): void {
  clearMessages();
  for (const f of findings) {
    const name = fieldOf(f.field);
    if (!submitted && name !== '' && name !== 'from_file' && !touched.has(name) &&
        f.severity !== 'error') {
      continue;
    }
    if (!submitted && name !== '' && !touched.has(name) && f.code.startsWith('missing')) continue;
    addMessage(f.field, f.severity, f.fix === '' ? f.message : `${f.message} ${f.fix}`);
  }
  if (submitted) {
    for (const m of missing) {
      if (!findings.some((f) => fieldOf(f.field) === m)) addMessage(m, 'error', 'Required.');
    }
  }
}

function showViolations(violations: ViolationView[], fallback: string): void {
  clearMessages();
  for (const v of violations) addMessage(v.field, 'error', v.description);
  if (violations.length === 0 && fallback !== '') addMessage('', 'error', fallback);
  const firstInvalid = document.querySelector<HTMLElement>('[aria-invalid="true"]');
  firstInvalid?.focus();
}

function setBusy(b: boolean): void {
  busy = b;
  for (const id of ['approve', 'deny', 'save']) {
    const btn = byId<HTMLButtonElement>(id);
    if (btn !== null) btn.disabled = b;
  }
  byId('app')?.setAttribute('aria-busy', String(b));
}

// --- Submit ----------------------------------------------------------------------

function onApprove(): void {
  if (busy || form === undefined) return;
  submitted = true;
  clearMessages();
  const c = collect();
  const ttlText = byId<HTMLInputElement>('ttl')?.value ?? '';
  const ttlSeconds = parseDuration(ttlText);
  if (ttlSeconds === undefined) {
    addMessage('ttl', 'error', 'Write a lifetime as e.g. 15m, 2h or 30d.');
    byId('ttl')?.focus();
    return;
  }
  const scope = selectedScope();
  const pin = byId<HTMLInputElement>('pin')?.value ?? '';
  const newPin = byId<HTMLInputElement>('new-pin')?.value ?? '';
  const newPinRepeat = byId<HTMLInputElement>('new-pin-repeat')?.value ?? '';
  const storePassphrase = byId<HTMLInputElement>('store-passphrase')?.value ?? '';
  const choosing = form.pin.known && !form.pin.pinSet && (form.pin.required || newPin !== '' || newPinRepeat !== '');
  if (choosing) {
    if (newPin.length < 4) {
      addMessage('new_pin', 'error', 'Choose a PIN of at least 4 characters.');
      byId('new-pin')?.focus();
      return;
    }
    if (newPin !== newPinRepeat) {
      addMessage('new_pin', 'error', 'The two PINs differ: type the same PIN twice.');
      byId('new-pin-repeat')?.focus();
      return;
    }
    if (form.pin.firstPinNeedsPassphrase && storePassphrase === '') {
      addMessage('store_passphrase', 'error', 'Type the store\'s passphrase to set the first PIN.');
      byId('store-passphrase')?.focus();
      return;
    }
  } else if (form.pin.known && form.pin.pinSet && form.pin.windowUntil === '' && pin === '') {
    addMessage('pin', 'error', 'Type your approval PIN.');
    byId('pin')?.focus();
    return;
  }
  setBusy(true);
  setStatus('Approving…');
  post({
    type: 'approve',
    values: c.values,
    generate: c.generate,
    scope,
    ttlSeconds,
    actionPattern: scope === 'standing' ? (byId<HTMLInputElement>('action-pattern')?.value.trim() ?? '') : '',
    pin,
    newPin,
    newPinRepeat,
    storePassphrase,
  });
}

function onSave(): void {
  if (busy || form === undefined) return;
  submitted = true;
  clearMessages();
  const c = collect();
  const profile = byId<HTMLInputElement>('profile')?.value.trim() ?? form.profile;
  if (!hasInput(c)) {
    addMessage('', 'error', 'Nothing to save: fill in the fields (or choose a file).');
    return;
  }
  setBusy(true);
  setStatus('Saving…');
  post({ type: 'save', profile, values: c.values, generate: c.generate });
}

function clearPinInputs(): void {
  for (const id of ['pin', 'new-pin', 'new-pin-repeat', 'store-passphrase']) {
    const i = byId<HTMLInputElement>(id);
    if (i !== null) i.value = '';
  }
}

// Empties every input that can hold a secret, once it has been submitted.
function clearSecrets(): void {
  for (const i of Array.from(document.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>(
    'input, textarea'))) {
    if (i.type === 'checkbox' || i.type === 'radio') continue;
    i.value = '';
    i.disabled = true;
  }
  chosenFiles.clear();
}

// --- Messages from the extension ----------------------------------------------

function onMessage(m: ToWebview): void {
  switch (m.type) {
    case 'init':
      render(m.form);
      break;
    case 'validation':
      if (m.seq !== validateSeq || validateTimer !== undefined) return;  // A newer one is on its way.
      setValidating(false);
      showFindings(m.findings, m.missingFields);
      for (const [name, value] of m.derived) {
        const d = byId(`derived-${name}`);
        if (d !== null) d.textContent = value === '' ? '' : `From the key file: ${value}`;
      }
      {
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
      break;
    case 'validationFailed':
      if (m.seq !== validateSeq || validateTimer !== undefined) return;
      setValidating(false);
      showViolations(m.violations, m.message);
      break;
    case 'fileChosen': {
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
      break;
    }
    case 'fileCleared': {
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
      break;
    }
    case 'busy':
      setStatus(m.what);
      break;
    case 'failed':
      setBusy(false);
      clearPinInputs();
      showViolations(m.violations, m.violations.length === 0 ? m.message : '');
      setStatus(m.violations.length === 0 ? m.message : `${m.message}: see the fields marked.`,
        'error');
      break;
    case 'pin':
      renderPin(m.pin);
      break;
    case 'done':
      clearSecrets();
      setBusy(true);
      setStatus(m.message, 'ok');
      byId('app')?.setAttribute('data-outcome', m.outcome);
      break;
    case 'resolved':
      clearSecrets();
      setBusy(true);
      setStatus(m.message, 'info');
      byId('app')?.setAttribute('data-outcome', 'resolved');
      break;
  }
}

window.addEventListener('message', (e: MessageEvent) => {
  const data = e.data as ToWebview | undefined;
  if (data !== undefined && typeof data === 'object' && typeof data.type === 'string') onMessage(data);
});
post({ type: 'ready' });
