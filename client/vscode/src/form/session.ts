// FormSession: the extension's side of one open credential form. It answers
// the webview's messages (src/form/protocol.ts) with calls to the broker
// through @credbroker/client. It knows nothing of VS Code: the panel
// (src/form/panel.ts) or a test harness gives it a FormHost.
//
// Secret values pass through it on their way to the broker and are not
// kept: neither logged nor stored, and a chosen key file's contents are held
// only until the form is submitted or closed.
import type {
  ApprovalPinStatus,
  ApproveRequestInput,
  CredbrokerClient,
  CredentialForm,
  Finding,
  ProviderInfo,
} from '@credbroker/client';
import { BrokerError, durationToMs, isBrokerError, toDate } from '@credbroker/client';

import type { CeremonyResult } from '../passkey/page';
import type {
  ApproveMessage,
  FieldView,
  FileTarget,
  FindingView,
  FormMode,
  FormView,
  PasskeyApproveMessage,
  PinView,
  RequestView,
  SaveMessage,
  ToWebview,
  ViolationView,
} from './protocol';
import { isFromWebview } from './protocol';

// What the session needs of the client: a subset of CredbrokerClient.
export type FormClient = Pick<CredbrokerClient,
  | 'getCredentialForm'
  | 'getCredential'
  | 'validateCredential'
  | 'approve'
  | 'deny'
  | 'putCredential'
  | 'getApprovalPinStatus'
  | 'setApprovalPin'
  | 'listPasskeys'>;

export interface PickedFile {
  name: string;       // For display: the base name.
  contents: string;   // UTF-8 text.
}

export interface FormHost {
  post(message: ToWebview): void;
  // Asks the person for a file; undefined when they cancelled.
  pickFile(target: FileTarget): Promise<PickedFile | undefined>;
  // The form is done (submitted, or the person closed it).
  close(): void;
  // The decision or save went through: refresh views, say so.
  changed?(outcome: 'approved' | 'denied' | 'saved', message: string): void;
  // Approves with a passkey: runs the WebAuthn ceremony in a browser for
  // `request` (its pin unused) and resolves with the broker's answer;
  // CANCELLED once `signal` aborts. Without it the form offers no passkey.
  approveWithPasskey?(request: ApproveRequestInput, action: string,
                      signal: AbortSignal): Promise<CeremonyResult>;
}

export type FormSubject =
  | { mode: 'approve'; requestId: string }
  | { mode: 'update'; provider: string; profile: string }
  | { mode: 'add'; provider: string; profile: string };

// Key files are small (a GCP service-account key is about 2.3 KB).
export const MAX_FILE_BYTES = 64 * 1024;

const JSON_FILE_TEXT = /\bJSON\b.*\bfile\b|\bkey file\b/i;

export function isJsonKeyField(f: { multiline: boolean; formatHint: string; label: string }): boolean {
  return f.multiline && JSON_FILE_TEXT.test(`${f.label} ${f.formatHint}`);
}

function severityName(s: Finding['severity']): FindingView['severity'] {
  switch (s) {
    case 'SEVERITY_ERROR': return 'error';
    case 'SEVERITY_WARNING': return 'warning';
    default: return 'info';
  }
}

function isoOf(ts: Parameters<typeof toDate>[0]): string {
  const d = toDate(ts);
  return d === undefined || d.getTime() <= 0 ? '' : d.toISOString();
}

// The fields a broker without the human-presence factor's additions does
// not send are read as absent.
type PinStatusFields = ApprovalPinStatus & Partial<{
  required: boolean;
  firstPinNeedsPassphrase: boolean;
  windowUntil: Parameters<typeof toDate>[0];
}>;

function future(ts: Parameters<typeof toDate>[0]): string {
  const d = toDate(ts);
  return d !== undefined && d.getTime() > Date.now() ? d.toISOString() : '';
}

export function pinViewOf(status: ApprovalPinStatus | undefined): PinView {
  if (status === undefined) {
    return { known: false, pinSet: false, required: false, firstPinNeedsPassphrase: false,
             failedAttempts: 0, lockedUntil: '', windowUntil: '' };
  }
  const s = status as PinStatusFields;
  return {
    known: true,
    pinSet: s.pinSet,
    // A broker that does not say is taken to require it.
    required: s.required ?? true,
    firstPinNeedsPassphrase: s.firstPinNeedsPassphrase ?? false,
    failedAttempts: s.failedAttempts,
    lockedUntil: future(s.lockedUntil),
    windowUntil: future(s.windowUntil),
  };
}

function fieldName(field: string): string {
  return field.startsWith('values.') ? field.slice('values.'.length) : field;
}

export function violationsOf(e: BrokerError): ViolationView[] {
  return e.fieldViolations.map((v) => ({ field: v.field, description: v.description }));
}

const SCOPES = { once: 'SCOPE_ONCE', session: 'SCOPE_SESSION', standing: 'SCOPE_STANDING' } as const;

export class FormSession {
  readonly subject: FormSubject;
  #client: FormClient;
  #host: FormHost;
  #providers: () => Promise<ProviderInfo[]>;
  #view: FormView | undefined;
  // Chosen files, by target: their contents go to the broker, never to the
  // webview.
  #files = new Map<string, PickedFile>();
  #finished = false;
  #busy = false;
  // Ends the passkey ceremony under way, if any.
  #passkeyAbort: AbortController | undefined;

  constructor(client: FormClient, subject: FormSubject, host: FormHost,
              providers: () => Promise<ProviderInfo[]>) {
    this.#client = client;
    this.subject = subject;
    this.#host = host;
    this.#providers = providers;
  }

  get requestId(): string | undefined {
    return this.subject.mode === 'approve' ? this.subject.requestId : undefined;
  }

  get view(): FormView | undefined {
    return this.#view;
  }

  // Loads the form from the broker. Rejects with a BrokerError when the
  // request or provider is unknown.
  async load(): Promise<FormView> {
    const s = this.subject;
    const form = await this.#client.getCredentialForm(
      s.mode === 'approve' ? { requestId: s.requestId } : { provider: s.provider, profile: s.profile });
    const providers = await this.#providers().catch(() => [] as ProviderInfo[]);
    const info = providers.find((p) => p.id === form.provider);
    let masked = new Map<string, string>();
    if (s.mode !== 'add') {
      try {
        const stored = await this.#client.getCredential({ provider: form.provider, profile: form.profile });
        masked = new Map(stored.fields.filter((f) => f.sensitive && f.set).map((f) => [f.name, f.display]));
      } catch {
        // Nothing stored yet: no masked values to show.
      }
    }
    let pin: ApprovalPinStatus | undefined;
    let passkeys = 0;
    if (s.mode === 'approve') {
      pin = await this.#client.getApprovalPinStatus({}).catch(() => undefined);
      if (this.#host.approveWithPasskey !== undefined) {
        // A broker without passkeys (or one too old to list them): none.
        passkeys = (await this.#client.listPasskeys({}).catch(() => undefined))?.passkeys.length ?? 0;
      }
    }
    this.#view = this.#viewOf(s.mode, form, info, masked, pinViewOf(pin));
    this.#view.passkeyApproval = passkeys > 0;
    return this.#view;
  }

  #viewOf(mode: FormMode, form: CredentialForm, info: ProviderInfo | undefined,
          masked: Map<string, string>, pin: PinView): FormView {
    const add = mode === 'add';
    const fields: FieldView[] = form.fields.map((ff) => {
      const spec = ff.spec!;
      return {
        name: spec.name,
        label: spec.label,
        sensitive: spec.sensitive,
        optional: spec.optional,
        formatHint: spec.formatHint,
        defaultValue: spec.defaultValue,
        derived: spec.derived,
        generatable: spec.generatable,
        multiline: spec.multiline,
        currentValue: add || spec.sensitive ? '' : ff.currentValue,
        isSet: !add && spec.sensitive && ff.isSet,
        maskedDisplay: add ? '' : masked.get(spec.name) ?? '',
        jsonKeyFile: isJsonKeyField(spec),
      };
    });
    const guideText = `${info?.description ?? ''} ${form.howToGet.join(' ')}`;
    let request: RequestView | undefined;
    const r = form.request;
    if (mode === 'approve' && r !== null) {
      const need = r.need;
      request = {
        requestId: r.requestId,
        action: need?.action ?? '',
        agentPeer: r.agentPeer,
        agentSession: r.agentSession,
        agentConnected: r.agentConnected,
        context: Object.entries(need?.context ?? {}).sort(([a], [b]) => a.localeCompare(b)),
        createdAt: isoOf(r.createdAt),
        expiresAt: isoOf(r.expiresAt),
        missingFields: r.missingFields,
        readiness: r.credentialReadiness === 'READINESS_UNSPECIFIED'
          ? '' : String(r.credentialReadiness).replace(/^READINESS_/, ''),
        bindingNote: r.bindingNote,
        requestedTtlSeconds: Math.round((durationToMs(need?.requestedTtl) ?? 0) / 1000),
      };
    }
    return {
      mode,
      provider: form.provider,
      profile: form.profile,
      displayName: form.displayName,
      oauth: form.oauth,
      arbitraryFields: info?.arbitraryFields ?? false,
      fields,
      howToGet: form.howToGet,
      requiredPermissions: form.requiredPermissions,
      notes: form.notes,
      troubleshooting: info?.troubleshooting ?? [],
      acceptsCredentialsFile: !fields.some((f) => f.jsonKeyFile) && /\bJSON file\b/i.test(guideText),
      request,
      pin,
      passkeyApproval: false,
    };
  }

  // One message from the webview. Never throws: failures go back to the
  // webview as messages.
  async handle(message: unknown): Promise<void> {
    if (!isFromWebview(message) || this.#finished) return;
    switch (message.type) {
      case 'ready':
        // A (re)loaded page starts empty: files chosen before are dropped
        // too, so that nothing is sent that the page does not show.
        this.#files.clear();
        if (this.#view !== undefined) this.#host.post({ type: 'init', form: this.#view });
        return;
      case 'validate':
        return this.#validate(message.seq, message.values, message.keep);
      case 'pickFile':
        return this.#pickFile(message.target);
      case 'clearFile':
        this.#files.delete(keyOf(message.target));
        this.#host.post({ type: 'fileCleared', target: message.target });
        return;
      case 'approve':
        return this.#exclusive(() => this.#approve(message));
      case 'approveWithPasskey':
        return this.#exclusive(() => this.#approveWithPasskey(message));
      case 'cancelPasskey':
        this.#passkeyAbort?.abort();
        return;
      case 'deny':
        return this.#exclusive(() => this.#deny(message.reason));
      case 'save':
        return this.#exclusive(() => this.#save(message));
      case 'connectOAuth':
        return;  // Not offered: the button is disabled.
      case 'close':
        this.dispose();
        this.#host.close();
        return;
    }
  }

  // The request was decided elsewhere (another approver, credctl), expired,
  // or its agent went away.
  requestEnded(message: string): void {
    if (this.#finished) return;
    this.#finish();
    this.#host.post({ type: 'resolved', message });
  }

  // Forgets the chosen files and ends a passkey ceremony under way (the
  // values it holds with it). The session answers nothing afterwards.
  dispose(): void {
    this.#finish();
  }

  #finish(): void {
    this.#finished = true;
    this.#files.clear();
    this.#passkeyAbort?.abort();
  }

  async #exclusive(work: () => Promise<void>): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      await work();
    } finally {
      this.#busy = false;
    }
  }

  // The values to send: what was typed, plus a field's chosen key file.
  #merged(values: Record<string, string>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) {
      if (typeof k === 'string' && typeof v === 'string') out[k] = v;
    }
    for (const [key, file] of this.#files) {
      if (key.startsWith('field:')) out[key.slice('field:'.length)] = file.contents;
    }
    return out;
  }

  #credentialsFile(): string {
    return this.#files.get('credentials-file')?.contents ?? '';
  }

  #provider(): { provider: string; profile: string } {
    const v = this.#view!;
    return { provider: v.provider, profile: v.profile };
  }

  async #validate(seq: number, values: Record<string, string>, keep: string[]): Promise<void> {
    if (this.#view === undefined) return;
    const kept = new Set(keep);
    try {
      const r = await this.#client.validateCredential({
        ...this.#provider(),
        values: this.#merged(values),
        fromFile: this.#credentialsFile(),
      });
      const isKept = (field: string): boolean => kept.has(fieldName(field));
      const findings = r.findings
        .filter((f) => !(isKept(f.field) && f.code.startsWith('missing')))
        .map((f) => ({ field: f.field, severity: severityName(f.severity), code: f.code,
                       message: f.message, fix: f.fix }));
      const missing = r.missingFields.filter((m) => !kept.has(m));
      const derivedNames = new Set(this.#view.fields.filter((f) => f.derived).map((f) => f.name));
      this.#host.post({
        type: 'validation',
        seq,
        valid: missing.length === 0 && !findings.some((f) => f.severity === 'error'),
        findings,
        missingFields: missing,
        derived: r.fields.filter((f) => derivedNames.has(f.name) && !f.sensitive)
          .map((f) => [f.name, f.display] as [string, string]),
        manualChecks: r.manualChecks,
      });
    } catch (e) {
      const err = asBrokerError(e);
      this.#host.post({ type: 'validationFailed', seq, message: err.message, violations: violationsOf(err) });
    }
  }

  async #pickFile(target: FileTarget): Promise<void> {
    let picked: PickedFile | undefined;
    try {
      picked = await this.#host.pickFile(target);
    } catch (e) {
      this.#host.post({ type: 'failed', what: 'file', code: 'INVALID_ARGUMENT',
                        message: (e as Error).message, violations: [] });
      return;
    }
    if (picked === undefined || this.#finished) return;
    this.#files.set(keyOf(target), picked);
    this.#host.post({ type: 'fileChosen', target, name: picked.name,
                      bytes: Buffer.byteLength(picked.contents, 'utf8') });
  }

  #failed(what: 'approve' | 'passkey' | 'deny' | 'save' | 'pin', e: unknown): void {
    const err = asBrokerError(e);
    this.#host.post({ type: 'failed', what, code: err.code, message: err.message,
                      violations: violationsOf(err) });
  }

  // A request decided by someone else answers FAILED_PRECONDITION or
  // NOT_FOUND: the form has nothing left to do.
  #decidedElsewhere(e: unknown): boolean {
    return isBrokerError(e) && endedElsewhere(e.code, e.message);
  }

  async #refreshPin(): Promise<void> {
    const s = await this.#client.getApprovalPinStatus({}).catch(() => undefined);
    if (s === undefined || this.#view === undefined) return;
    this.#view.pin = pinViewOf(s);
    this.#host.post({ type: 'pin', pin: this.#view.pin });
  }

  async #approve(m: ApproveMessage): Promise<void> {
    const view = this.#view;
    if (view === undefined || this.subject.mode !== 'approve') return;
    const requestId = this.subject.requestId;
    let pin = typeof m.pin === 'string' ? m.pin : '';
    const choosing = view.pin.known && !view.pin.pinSet && (view.pin.required || m.newPin !== '');
    if (choosing) {
      if (m.newPin.length === 0 || m.newPin !== m.newPinRepeat) {
        this.#host.post({ type: 'failed', what: 'pin', code: 'INVALID_ARGUMENT',
          message: 'The two PINs differ',
          violations: [{ field: 'new_pin', description: 'Type the same PIN twice.' }] });
        return;
      }
      this.#host.post({ type: 'busy', what: 'Setting your approval PIN…' });
      try {
        await this.#client.setApprovalPin(m.storePassphrase !== ''
          ? { newPin: m.newPin, storePassphrase: m.storePassphrase } as { newPin: string }
          : { newPin: m.newPin });
      } catch (e) {
        this.#failed('pin', e);
        return;
      }
      pin = m.newPin;
      view.pin = { ...view.pin, pinSet: true };
      this.#host.post({ type: 'pin', pin: view.pin });
    }
    const values = this.#merged(m.values);
    this.#host.post({ type: 'busy', what: 'Approving…' });
    try {
      const file = await this.#putCredentialsFile(values, m.generate);
      const r = await this.#client.approve({ ...decisionOf(requestId, m, values, file), pin });
      this.#approved(m.scope, r.grantId, r.standingApprovalId);
    } catch (e) {
      if (this.#decidedElsewhere(e)) {
        this.requestEnded(`This request was already decided or has ended: ${asBrokerError(e).message}`);
        return;
      }
      this.#failed('approve', e);
      await this.#refreshPin();
    }
  }

  // Stores a chosen credentials file before an approval: ApproveRequest
  // carries field values only (PutCredential reads the file), so the
  // request is then approved with the stored credential. Returns the
  // file's contents ("" when none was chosen).
  async #putCredentialsFile(values: Record<string, string>, generate: string[]): Promise<string> {
    const file = this.#credentialsFile();
    if (file !== '') {
      await this.#client.putCredential({ ...this.#provider(), values, fromFile: file,
                                         keepExisting: true, generate });
      this.#files.delete('credentials-file');
    }
    return file;
  }

  #approved(scope: string, grantId: string, standingApprovalId: string | undefined): void {
    this.#finish();
    const message = standingApprovalId !== undefined && standingApprovalId !== ''
      ? `Approved: grant ${grantId}, standing approval ${standingApprovalId}.`
      : `Approved: grant ${grantId} (${scope}).`;
    this.#host.post({ type: 'done', outcome: 'approved', message });
    this.#host.changed?.('approved', message);
  }

  // The same decision as #approve with a passkey for the PIN: the host runs
  // the ceremony in a browser. The values wait in the host's ceremony until
  // the page answers, the person cancels or the form closes.
  async #approveWithPasskey(m: PasskeyApproveMessage): Promise<void> {
    const view = this.#view;
    const host = this.#host;
    if (view === undefined || this.subject.mode !== 'approve' || host.approveWithPasskey === undefined) return;
    const requestId = this.subject.requestId;
    const abort = new AbortController();
    this.#passkeyAbort = abort;
    try {
      const values = this.#merged(m.values);
      this.#host.post({ type: 'busy', what: 'Approving…' });
      const file = await this.#putCredentialsFile(values, m.generate);
      if (abort.signal.aborted) throw new BrokerError(1, 'The passkey approval was cancelled.');
      this.#host.post({ type: 'busy',
        what: 'Waiting for your passkey: confirm on the page that opened in your browser…' });
      const r = await host.approveWithPasskey(decisionOf(requestId, m, values, file),
        view.request?.action ?? '', abort.signal);
      if (r.ok) {
        this.#approved(m.scope, r.grantId ?? '', r.standingApprovalId);
        return;
      }
      if (this.#finished) return;  // Closed or ended meanwhile.
      const code = r.code ?? 'UNKNOWN';
      if (endedElsewhere(code, r.message)) {
        this.requestEnded(`This request was already decided or has ended: ${r.message}`);
        return;
      }
      this.#host.post({ type: 'failed', what: 'passkey', code,
        message: code === 'CANCELLED' ? 'The passkey approval was cancelled.' : r.message,
        violations: r.violations ?? [] });
    } catch (e) {
      if (this.#decidedElsewhere(e)) {
        this.requestEnded(`This request was already decided or has ended: ${asBrokerError(e).message}`);
        return;
      }
      this.#failed('passkey', e);
    } finally {
      if (this.#passkeyAbort === abort) this.#passkeyAbort = undefined;
    }
  }

  async #deny(reason: string): Promise<void> {
    if (this.subject.mode !== 'approve') return;
    this.#host.post({ type: 'busy', what: 'Denying…' });
    try {
      await this.#client.deny({ requestId: this.subject.requestId, reason });
      this.#finish();
      const message = reason === '' ? 'Denied.' : `Denied: ${reason}`;
      this.#host.post({ type: 'done', outcome: 'denied', message });
      this.#host.changed?.('denied', message);
    } catch (e) {
      if (this.#decidedElsewhere(e)) {
        this.requestEnded(`This request was already decided or has ended: ${asBrokerError(e).message}`);
        return;
      }
      this.#failed('deny', e);
    }
  }

  async #save(m: SaveMessage): Promise<void> {
    const view = this.#view;
    if (view === undefined || this.subject.mode === 'approve') return;
    const profile = this.subject.mode === 'add' ? (m.profile.trim() || 'default') : view.profile;
    this.#host.post({ type: 'busy', what: 'Saving…' });
    try {
      const r = await this.#client.putCredential({
        provider: view.provider,
        profile,
        values: this.#merged(m.values),
        fromFile: this.#credentialsFile(),
        keepExisting: this.subject.mode === 'update',
        generate: m.generate,
      });
      this.#finish();
      const c = r.credential;
      const notes = r.findings.filter((f) => f.severity !== 'SEVERITY_ERROR').map((f) => f.message);
      const message = `Saved ${view.provider}/${c?.profile ?? profile} version ${c?.version ?? '?'}` +
        `${c !== null ? ` (${String(c.readiness).replace(/^READINESS_/, '').toLowerCase()})` : ''}.` +
        (notes.length > 0 ? ` ${notes.join(' ')}` : '');
      this.#host.post({ type: 'done', outcome: 'saved', message });
      this.#host.changed?.('saved', message);
    } catch (e) {
      this.#failed('save', e);
    }
  }
}

// What ApproveRequest says of the decision, but the human-presence factor.
function decisionOf(requestId: string, m: ApproveMessage | PasskeyApproveMessage,
                    values: Record<string, string>, file: string): ApproveRequestInput {
  return {
    requestId,
    values: file !== '' ? {} : values,
    generate: file !== '' ? [] : m.generate,
    scope: SCOPES[m.scope] ?? 'SCOPE_ONCE',
    ttl: m.ttlSeconds > 0 ? { seconds: Math.round(m.ttlSeconds), nanos: 0 } : null,
    actionPattern: m.scope === 'standing' ? m.actionPattern : '',
  };
}

function endedElsewhere(code: string, message: string): boolean {
  if (code !== 'FAILED_PRECONDITION' && code !== 'NOT_FOUND') return false;
  return /already|decided|resolved|not pending|expired|cancel/i.test(message);
}

function keyOf(t: FileTarget): string {
  return 'field' in t ? `field:${t.field}` : 'credentials-file';
}

export function asBrokerError(e: unknown): BrokerError {
  if (isBrokerError(e)) return e;
  // Not from the broker: UNKNOWN, with the error's own message.
  return new BrokerError(2, e instanceof Error ? e.message : String(e));
}
