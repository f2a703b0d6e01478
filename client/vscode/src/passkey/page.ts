// PasskeyPage: the WebAuthn ceremonies — register a passkey, approve a
// request with one — on a page the extension serves at
// http://localhost:PORT and opens in the person's browser
// (vscode.env.openExternal). VS Code's webviews cannot run them: a webview
// is a cross-origin iframe (vscode-webview://, or a random subdomain in
// code-server) whose parent grants no publickey-credentials permission,
// and its origin is not one the RP ID "localhost" covers. A top-level
// http://localhost page is a secure context whose origin the broker can
// list (--passkey_origins=http://localhost:PORT). See README.md.
//
// Each ceremony has a one-time path; the page gets the broker's challenge
// from the extension, runs navigator.credentials.create/get and posts the
// answer back, which the extension relays to the broker through
// @credbroker/client. The page never sees the PIN or a token. One
// ceremony's path works once; a post from another origin is refused.
import { randomBytes } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';

import type { ApproveRequestInput, Passkey, PasskeyChallenge } from '@credbroker/client';

// The calls the page needs (CredbrokerClient has them).
export interface PasskeyBroker {
  beginPasskeyRegistration(request: object): Promise<PasskeyChallenge>;
  finishPasskeyRegistration(request: {
    pin: string; name: string; clientDataJson: Buffer; attestationObject: Buffer;
  }): Promise<Passkey>;
  beginPasskeyAssertion(request: { requestId: string }): Promise<PasskeyChallenge>;
  approve(request: ApproveRequestInput): Promise<{ grantId: string; standingApprovalId?: string }>;
}

export type Ceremony =
  | { kind: 'register'; pin: string; name: string }
  // `approve` is the rest of the decision (scope, ttl, values); its pin is
  // not used.
  | { kind: 'approve'; requestId: string; action: string; approve: ApproveRequestInput };

export interface CeremonyResult {
  ok: boolean;
  message: string;
  // A failure: the broker's status code name (CANCELLED: cancel() or
  // stop()), and the fields it refused.
  code?: string;
  violations?: Array<{ field: string; description: string }>;
  // An approval: what the broker granted.
  grantId?: string;
  standingApprovalId?: string;
}

interface Pending {
  ceremony: Ceremony;
  challenge?: PasskeyChallenge;
  settle: (r: CeremonyResult) => void;
}

const b64u = (b: Uint8Array | Buffer | undefined): string => Buffer.from(b ?? []).toString('base64url');

function fromB64u(s: unknown): Buffer {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s)) throw new Error('not base64url');
  return Buffer.from(s, 'base64url');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export class PasskeyPage {
  readonly #broker: PasskeyBroker;
  readonly #port: number;
  #server: Server | undefined;
  readonly #pending = new Map<string, Pending>();

  // `port` 0 picks one (tests); the broker's --passkey_origins must name
  // http://localhost:<port>.
  constructor(broker: PasskeyBroker, port: number) {
    this.#broker = broker;
    this.#port = port;
  }

  get origin(): string {
    const a = this.#server?.address();
    const port = a !== null && typeof a === 'object' ? a.port : this.#port;
    return `http://localhost:${port}`;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      this.#handle(req, res).catch((e: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(e instanceof Error ? e.message : e));
      });
    });
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(this.#port, '127.0.0.1', () => ok());
    });
    this.#server = server;
  }

  async stop(): Promise<void> {
    for (const p of this.#pending.values()) p.settle({ ok: false, code: 'CANCELLED', message: 'closed' });
    this.#pending.clear();
    await new Promise<void>((ok) => (this.#server ? this.#server.close(() => ok()) : ok()));
    this.#server = undefined;
  }

  // Registers a ceremony; `url` is the page to open, `result` settles when
  // the broker answered the page's post (or the page was closed by stop()).
  // cancel() forgets the ceremony (and the values it holds) unless its
  // answer is already on its way; `result` then settles CANCELLED.
  open(ceremony: Ceremony): { url: string; result: Promise<CeremonyResult>; cancel: () => void } {
    const id = randomBytes(18).toString('base64url');
    let settle: (r: CeremonyResult) => void = () => undefined;
    const result = new Promise<CeremonyResult>((ok) => (settle = ok));
    this.#pending.set(id, { ceremony, settle });
    const cancel = (): void => {
      const p = this.#pending.get(id);
      if (p === undefined) return;
      this.#pending.delete(id);
      p.settle({ ok: false, code: 'CANCELLED', message: 'The passkey ceremony was cancelled.' });
    };
    return { url: `${this.origin}/passkey/${id}`, result, cancel };
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.origin);
    const m = /^\/passkey\/([A-Za-z0-9_-]+)(\/result)?$/.exec(url.pathname);
    const pending = m ? this.#pending.get(m[1]) : undefined;
    if (m === null || pending === undefined) {
      res.writeHead(url.pathname === '/favicon.ico' ? 204 : 404);
      res.end();
      return;
    }
    if (m[2] === undefined && req.method === 'GET') {
      await this.#page(pending, res);
      return;
    }
    if (m[2] !== undefined && req.method === 'POST' && req.headers.origin === this.origin) {
      this.#pending.delete(m[1]);  // One answer per ceremony.
      const r = await this.#finish(pending, await readBody(req));
      pending.settle(r);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(r));
      return;
    }
    res.writeHead(403);
    res.end();
  }

  async #page(p: Pending, res: ServerResponse): Promise<void> {
    const c = p.ceremony;
    p.challenge = c.kind === 'register'
      ? await this.#broker.beginPasskeyRegistration({})
      : await this.#broker.beginPasskeyAssertion({ requestId: c.requestId });
    const ch = p.challenge;
    const options = {
      kind: c.kind,
      challenge: b64u(ch.challenge),
      rpId: ch.rpId,
      userHandle: b64u(ch.userHandle),
      credentialIds: (ch.credentialIds ?? []).map((id) => b64u(id)),
      userVerification: ch.userVerificationRequired ? 'required' : 'preferred',
      name: c.kind === 'register' ? c.name : '',
    };
    const nonce = randomBytes(16).toString('base64');
    const title = c.kind === 'register'
      ? 'Register a passkey for credbroker approvals'
      : `Approve with your passkey: ${c.action} (request ${c.requestId})`;
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; connect-src 'self'; style-src 'nonce-${nonce}'`,
      'cache-control': 'no-store',
    });
    res.end(`<!doctype html><html><head><meta charset="utf-8"><title>credbroker passkey</title>
<style nonce="${nonce}">body{font:16px sans-serif;margin:3em}</style></head><body>
<h1 id="title">${escapeHtml(title)}</h1>
<button id="go" type="button">Use my passkey</button>
<p id="status" role="status"></p>
<script nonce="${nonce}">const OPTIONS = ${JSON.stringify(options).replace(/</g, '\\u003c')};
${PAGE_SCRIPT}</script></body></html>`);
  }

  async #finish(p: Pending, body: string): Promise<CeremonyResult> {
    try {
      const a = JSON.parse(body) as Record<string, unknown>;
      const c = p.ceremony;
      if (c.kind === 'register') {
        const key = await this.#broker.finishPasskeyRegistration({
          pin: c.pin, name: c.name,
          clientDataJson: fromB64u(a.clientDataJSON), attestationObject: fromB64u(a.attestationObject),
        });
        return { ok: true, message: `Passkey "${key.name}" registered.` };
      }
      const r = await this.#broker.approve({
        ...c.approve,
        requestId: c.requestId,
        pin: '',
        passkey: {
          credentialId: fromB64u(a.rawId), clientDataJson: fromB64u(a.clientDataJSON),
          authenticatorData: fromB64u(a.authenticatorData), signature: fromB64u(a.signature),
        },
      });
      return { ok: true, message: `Approved: grant ${r.grantId}.`, grantId: r.grantId,
        standingApprovalId: r.standingApprovalId ?? '' };
    } catch (e) {
      const err = e as { code?: unknown; message?: unknown; fieldViolations?: unknown };
      const violations = Array.isArray(err.fieldViolations)
        ? (err.fieldViolations as Array<{ field?: unknown; description?: unknown }>)
          .map((v) => ({ field: String(v.field ?? ''), description: String(v.description ?? '') }))
        : [];
      return { ok: false, code: typeof err.code === 'string' ? err.code : undefined,
        message: String(err.message ?? e), violations };
    }
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((ok, fail) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (b: Buffer) => {
      size += b.length;
      if (size > 64 * 1024) req.destroy(new Error('too large'));
      else chunks.push(b);
    });
    req.on('end', () => ok(Buffer.concat(chunks).toString('utf8')));
    req.on('error', fail);
  });
}

// The page's script: the ceremony with OPTIONS, then the answer posted to
// <page path>/result. Plain browser JavaScript.
const PAGE_SCRIPT = String.raw`
const dec = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
const enc = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const status = document.getElementById('status');
async function ceremony() {
  const allow = OPTIONS.credentialIds.map((id) => ({ type: 'public-key', id: dec(id) }));
  if (OPTIONS.kind === 'register') {
    const cred = await navigator.credentials.create({ publicKey: {
      challenge: dec(OPTIONS.challenge),
      rp: { id: OPTIONS.rpId, name: 'credbroker' },
      user: { id: dec(OPTIONS.userHandle), name: 'credbroker approver', displayName: OPTIONS.name },
      pubKeyCredParams: [{ type: 'public-key', alg: -7 }, { type: 'public-key', alg: -8 }],
      excludeCredentials: allow, attestation: 'none',
      authenticatorSelection: { userVerification: OPTIONS.userVerification },
    } });
    return { rawId: enc(cred.rawId), clientDataJSON: enc(cred.response.clientDataJSON),
      attestationObject: enc(cred.response.attestationObject) };
  }
  const cred = await navigator.credentials.get({ publicKey: {
    challenge: dec(OPTIONS.challenge), rpId: OPTIONS.rpId, allowCredentials: allow,
    userVerification: OPTIONS.userVerification,
  } });
  return { rawId: enc(cred.rawId), clientDataJSON: enc(cred.response.clientDataJSON),
    authenticatorData: enc(cred.response.authenticatorData), signature: enc(cred.response.signature) };
}
document.getElementById('go').addEventListener('click', async () => {
  document.getElementById('go').disabled = true;
  status.textContent = 'Waiting for your passkey…';
  try {
    const answer = await ceremony();
    const r = await fetch(location.pathname + '/result', { method: 'POST', body: JSON.stringify(answer) });
    const j = await r.json();
    status.textContent = (j.ok ? '' : (j.code || 'refused') + ': ') + j.message;
    status.dataset.outcome = j.ok ? 'ok' : 'failed';
  } catch (e) {
    status.textContent = 'The passkey ceremony failed: ' + e.name + ': ' + e.message;
    status.dataset.outcome = 'failed';
  }
});
`;
