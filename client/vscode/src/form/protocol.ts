// The messages between the credential form (the webview, src/webview/form.ts)
// and the extension (FormSession, src/form/session.ts). Plain JSON, no
// broker types: the webview knows nothing of gRPC.
//
// Secret values travel only webview → extension (in `validate`, `approve`,
// `approveWithPasskey` and `save`); the extension never sends one back: stored sensitive values
// are described by `isSet` and a masked display only.

export type FormMode = 'approve' | 'update' | 'add';

export type ScopeName = 'once' | 'session' | 'standing';

export interface FieldView {
  name: string;
  label: string;
  sensitive: boolean;
  optional: boolean;
  formatHint: string;
  defaultValue: string;
  derived: boolean;
  generatable: boolean;
  multiline: boolean;
  // Non-sensitive fields: the stored value (update form).
  currentValue: string;
  // Sensitive fields: a value is stored (offer "keep current").
  isSet: boolean;
  // Sensitive fields: the broker's masked display of the stored value
  // ("…MPLE"), when it gave one.
  maskedDisplay: string;
  // The field takes a JSON key file: the form offers a file picker.
  jsonKeyFile: boolean;
}

export interface RequestView {
  requestId: string;
  action: string;
  // The agent's process as the broker identified it (SO_PEERCRED).
  agentPeer: string;
  agentSession: string;
  agentConnected: boolean;
  context: Array<[string, string]>;
  createdAt: string;   // ISO 8601, or "".
  expiresAt: string;
  missingFields: string[];
  readiness: string;   // "READY", "INCOMPLETE", ...
  bindingNote: string;
  requestedTtlSeconds: number;  // 0: none asked.
}

export interface PinView {
  // Whether the broker reported the PIN state at all (an older broker may
  // not): when false the form shows an optional PIN field.
  known: boolean;
  pinSet: boolean;
  // Approvals need the PIN (false only when the broker runs without the
  // human-presence factor): until one is set, the form has one chosen.
  required: boolean;
  // Setting the first PIN needs the store's passphrase.
  firstPinNeedsPassphrase: boolean;
  failedAttempts: number;
  lockedUntil: string;  // ISO 8601, or "".
  // A correct PIN opened a window in which this process approves without
  // it, until then (ISO 8601, or "").
  windowUntil: string;
}

export interface FormView {
  mode: FormMode;
  provider: string;
  profile: string;
  displayName: string;
  oauth: boolean;
  // "custom": the application's own secrets, any field names.
  arbitraryFields: boolean;
  fields: FieldView[];
  howToGet: string[];
  requiredPermissions: string[];
  notes: string[];
  troubleshooting: string[];
  // The provider accepts one JSON file that holds all its fields (Azure):
  // the form offers "Import from a JSON file".
  acceptsCredentialsFile: boolean;
  request?: RequestView;
  pin: PinView;
  // The broker has a passkey registered (ListPasskeys) and the extension can
  // run the ceremony in a browser: the form offers "Approve with passkey".
  passkeyApproval: boolean;
}

export interface FindingView {
  field: string;      // "" for the credential as a whole.
  severity: 'info' | 'warning' | 'error';
  code: string;
  message: string;
  fix: string;
}

export interface ViolationView {
  field: string;
  description: string;
}

// Where a chosen file goes: a field's value, or the whole credential.
export type FileTarget = { field: string } | { credentialsFile: true };

// Extension → webview.
export type ToWebview =
  | { type: 'init'; form: FormView }
  | {
      type: 'validation';
      seq: number;
      valid: boolean;
      findings: FindingView[];
      missingFields: string[];
      // Normalized non-sensitive values (e.g. a GCP project id read from
      // the key file).
      derived: Array<[string, string]>;
      manualChecks: string[];
    }
  | { type: 'validationFailed'; seq: number; message: string; violations: ViolationView[] }
  | { type: 'fileChosen'; target: FileTarget; name: string; bytes: number }
  | { type: 'fileCleared'; target: FileTarget }
  | { type: 'busy'; what: string }
  | {
      type: 'failed';
      what: 'approve' | 'passkey' | 'deny' | 'save' | 'pin' | 'file';
      code: string;
      message: string;
      violations: ViolationView[];
    }
  | { type: 'pin'; pin: PinView }
  | { type: 'done'; outcome: 'approved' | 'denied' | 'saved'; message: string }
  | { type: 'resolved'; message: string };

export interface ApproveMessage {
  type: 'approve';
  values: Record<string, string>;
  generate: string[];
  scope: ScopeName;
  ttlSeconds: number;     // 0: the broker's default for the scope.
  actionPattern: string;  // STANDING only; "" for the request's action.
  pin: string;            // The current PIN, when one is set.
  newPin: string;         // First use: the PIN chosen (typed twice).
  newPinRepeat: string;
  storePassphrase: string;  // First PIN of a passphrase-protected store.
}

// The same decision as ApproveMessage, with a passkey in place of the PIN:
// the extension opens the ceremony in the person's browser (WebAuthn does
// not run in a webview) and answers `done` or `failed` (what: 'passkey').
export interface PasskeyApproveMessage {
  type: 'approveWithPasskey';
  values: Record<string, string>;
  generate: string[];
  scope: ScopeName;
  ttlSeconds: number;
  actionPattern: string;
}

export interface SaveMessage {
  type: 'save';
  profile: string;
  values: Record<string, string>;
  generate: string[];
}

// Webview → extension.
export type FromWebview =
  | { type: 'ready' }
  | { type: 'validate'; seq: number; values: Record<string, string>; keep: string[] }
  | { type: 'pickFile'; target: FileTarget }
  | { type: 'clearFile'; target: FileTarget }
  | ApproveMessage
  | PasskeyApproveMessage
  // Stop waiting for the passkey ceremony (its page answers nothing then).
  | { type: 'cancelPasskey' }
  | { type: 'deny'; reason: string }
  | SaveMessage
  | { type: 'connectOAuth' }
  | { type: 'close' };

export function isFromWebview(m: unknown): m is FromWebview {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}
