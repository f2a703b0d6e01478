// CredbrokerClient: the approver's typed, promise-based calls to a running
// credbrokerd (ApprovalService, CredentialService, LockService, Health) over
// one channel.
import * as grpc from '@grpc/grpc-js';

import { CallOptions, ConnectOptions, Connection } from './connection';
import { BrokerError } from './errors';
import type { ApprovalServiceClient } from './generated/credbroker/v1/ApprovalService';
import type { CredentialServiceClient } from './generated/credbroker/v1/CredentialService';
import type { LockServiceClient } from './generated/credbroker/v1/LockService';
import type { HealthClient } from './generated/grpc/health/v1/Health';
import type * as m from './generated/messages';
import { loadServices } from './proto';
import { RequestWatch, WatchOptions, startWatch } from './watch';

export type ServingStatus = m.HealthCheckResponse['status'];

// A client holds one channel; calls may run concurrently. Each unary call
// has a deadline (ConnectOptions.timeoutMs, or CallOptions.timeoutMs) and
// fails with a BrokerError. Nothing a call sends — values, PINs — is kept
// after it; the client keeps only its token.
export class CredbrokerClient {
  readonly #conn: Connection;
  readonly #approval: ApprovalServiceClient;
  readonly #credentials: CredentialServiceClient;
  readonly #lock: LockServiceClient;
  readonly #health: HealthClient;

  private constructor(conn: Connection) {
    const services = loadServices();
    this.#conn = conn;
    const opts = conn.clientOptions();
    const insecure = grpc.credentials.createInsecure();  // Unused: the channel is shared.
    this.#approval = new services.ApprovalService(conn.address, insecure, opts);
    this.#credentials = new services.CredentialService(conn.address, insecure, opts);
    this.#lock = new services.LockService(conn.address, insecure, opts);
    this.#health = new services.Health(conn.address, insecure, opts);
  }

  // Resolves the address and reads the token (approver.token by default);
  // nothing is sent until the first call. Rejects with a BrokerError
  // (NOT_FOUND for a missing token file).
  static async connect(options: ConnectOptions = {}): Promise<CredbrokerClient> {
    return new CredbrokerClient(await Connection.open(options, 'approver'));
  }

  // The broker's address, e.g. "unix:/home/me/.local/share/credbroker/broker.sock".
  get address(): string {
    return this.#conn.address;
  }

  // Resolves once connected; UNAVAILABLE when not within timeoutMs.
  waitForReady(timeoutMs?: number): Promise<void> {
    return this.#conn.waitForReady(timeoutMs);
  }

  // Closes the channel: watches end (done), calls in flight finish, later
  // calls fail.
  close(): void {
    this.#conn.close();
  }

  // --- Health ---------------------------------------------------------

  // grpc.health.v1.Health/Check: "SERVING" when the broker serves `service`
  // (default: the whole server).
  async checkHealth(service = '', options?: CallOptions): Promise<ServingStatus> {
    const r = await this.#conn.unary<m.HealthCheckResponse>(
      (md, o, cb) => this.#health.Check({ service }, md, o, cb), options);
    return r.status;
  }

  // --- LockService ----------------------------------------------------

  // Whether the broker's store is locked: a broker started without its
  // passphrase (no terminal, no --passphrase_fd) serves only health and
  // LockService, and answers every other call FAILED_PRECONDITION (see
  // isStoreLocked()) until unlock(). UNIMPLEMENTED from a broker that
  // predates LockService (it is never locked).
  getLockState(options?: CallOptions): Promise<m.LockState> {
    return this.#conn.unary((md, o, cb) => this.#lock.GetLockState({}, md, o, cb), options);
  }

  // Opens the store with its passphrase. PERMISSION_DENIED for a wrong one,
  // RESOURCE_EXHAUSTED ("try again in N s") after too many; unlockedNow
  // false when it was already unlocked. The broker then restarts its
  // listeners (about a second): calls fail UNAVAILABLE meanwhile, and this
  // client reconnects by itself. The passphrase is not kept after the call.
  unlock(passphrase: string, options?: CallOptions): Promise<m.UnlockResponse> {
    return this.#conn.unary((md, o, cb) => this.#lock.Unlock({ passphrase }, md, o, cb), options);
  }

  // --- ApprovalService ------------------------------------------------

  // The pending requests and what happens to them, until closed or aborted;
  // reconnects by itself (see WatchItem), and waits out a locked store
  // ('locked' items). Throws (from the iterator) only what retrying cannot
  // fix: UNAUTHENTICATED, PERMISSION_DENIED, UNIMPLEMENTED, INVALID_ARGUMENT.
  watchRequests(options: WatchOptions = {}): RequestWatch {
    return startWatch({
      open: (deadline) => this.#approval.WatchRequests({}, this.#conn.metadata(), { deadline }),
      toError: (e) => this.#conn.toError(e),
      closed: () => this.#conn.closed,
      onClose: (listener) => this.#conn.onClose(listener),
    }, options);
  }

  // The requests pending now: one watch's snapshot.
  async listPending(options: CallOptions = {}): Promise<m.ApprovalRequest[]> {
    this.#conn.checkOpen();
    const stream = this.#approval.WatchRequests({}, this.#conn.metadata(),
      { deadline: this.#conn.deadline(options.timeoutMs) });
    const onAbort = (): void => stream.cancel();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const pending: m.ApprovalRequest[] = [];
    try {
      for await (const event of stream as AsyncIterable<m.ApprovalEvent>) {
        if (event.kind === 'KIND_SNAPSHOT' && event.request !== null) pending.push(event.request);
        if (event.kind === 'KIND_SNAPSHOT_DONE') return pending;
      }
      throw new BrokerError(grpc.status.UNAVAILABLE, 'the watch ended before its snapshot did');
    } catch (e) {
      throw this.#conn.toError(e);
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      stream.cancel();
    }
  }

  // The form for a request (requestId) or for updating a stored credential
  // (provider, profile).
  getCredentialForm(request: m.GetCredentialFormRequestInput, options?: CallOptions): Promise<m.CredentialForm> {
    return this.#conn.unary((md, o, cb) => this.#approval.GetCredentialForm(request, md, o, cb), options);
  }

  // Approves a pending request, with new values or the stored credential.
  // INVALID_ARGUMENT with fieldViolations for bad values (the request stays
  // pending); FAILED_PRECONDITION when it was already decided;
  // PERMISSION_DENIED without the approval PIN when one is required.
  approve(request: m.ApproveRequestInput, options?: CallOptions): Promise<m.ApproveResponse> {
    return this.#conn.unary((md, o, cb) => this.#approval.Approve(request, md, o, cb), options);
  }

  deny(request: m.DenyRequestInput, options?: CallOptions): Promise<m.DenyResponse> {
    return this.#conn.unary((md, o, cb) => this.#approval.Deny(request, md, o, cb), options);
  }

  // A challenge for approving one request with a passkey (approve's `passkey`).
  beginPasskeyAssertion(request: m.BeginPasskeyAssertionRequestInput, options?: CallOptions): Promise<m.PasskeyChallenge> {
    return this.#conn.unary((md, o, cb) => this.#approval.BeginPasskeyAssertion(request, md, o, cb), options);
  }

  // --- CredentialService ----------------------------------------------

  listProviders(request: m.ListProvidersRequestInput = {}, options?: CallOptions): Promise<m.ListProvidersResponse> {
    return this.#conn.unary((md, o, cb) => this.#credentials.ListProviders(request, md, o, cb), options);
  }

  listCredentials(request: m.ListCredentialsRequestInput = {}, options?: CallOptions): Promise<m.ListCredentialsResponse> {
    return this.#conn.unary((md, o, cb) => this.#credentials.ListCredentials(request, md, o, cb), options);
  }

  // Masked; NOT_FOUND when nothing is stored.
  getCredential(request: m.GetCredentialRequestInput, options?: CallOptions): Promise<m.CredentialSummary> {
    return this.#conn.unary((md, o, cb) => this.#credentials.GetCredential(request, md, o, cb), options);
  }

  // INVALID_ARGUMENT with fieldViolations on bad values; nothing stored.
  putCredential(request: m.PutCredentialRequestInput, options?: CallOptions): Promise<m.PutCredentialResponse> {
    return this.#conn.unary((md, o, cb) => this.#credentials.PutCredential(request, md, o, cb), options);
  }

  deleteCredential(request: m.DeleteCredentialRequestInput, options?: CallOptions): Promise<m.DeleteCredentialResponse> {
    return this.#conn.unary((md, o, cb) => this.#credentials.DeleteCredential(request, md, o, cb), options);
  }

  validateCredential(request: m.ValidateCredentialRequestInput, options?: CallOptions): Promise<m.ValidateCredentialResponse> {
    return this.#conn.unary((md, o, cb) => this.#credentials.ValidateCredential(request, md, o, cb), options);
  }

  resolveRequirements(request: m.ResolveRequirementsRequestInput, options?: CallOptions): Promise<m.ResolveRequirementsResponse> {
    return this.#conn.unary((md, o, cb) => this.#credentials.ResolveRequirements(request, md, o, cb), options);
  }

  listGrants(request: m.ListGrantsRequestInput = {}, options?: CallOptions): Promise<m.ListGrantsResponse> {
    return this.#conn.unary((md, o, cb) => this.#credentials.ListGrants(request, md, o, cb), options);
  }

  revokeGrant(request: m.RevokeGrantRequestInput, options?: CallOptions): Promise<m.RevokeGrantResponse> {
    return this.#conn.unary((md, o, cb) => this.#credentials.RevokeGrant(request, md, o, cb), options);
  }

  listAuditEvents(request: m.ListAuditEventsRequestInput = {}, options?: CallOptions): Promise<m.ListAuditEventsResponse> {
    return this.#conn.unary((md, o, cb) => this.#credentials.ListAuditEvents(request, md, o, cb), options);
  }

  listStandingApprovals(request: m.ListStandingApprovalsRequestInput = {}, options?: CallOptions): Promise<m.ListStandingApprovalsResponse> {
    return this.#conn.unary((md, o, cb) => this.#credentials.ListStandingApprovals(request, md, o, cb), options);
  }

  revokeStandingApproval(request: m.RevokeStandingApprovalRequestInput, options?: CallOptions): Promise<m.RevokeStandingApprovalResponse> {
    return this.#conn.unary((md, o, cb) => this.#credentials.RevokeStandingApproval(request, md, o, cb), options);
  }

  listCredentialVersions(request: m.ListCredentialVersionsRequestInput, options?: CallOptions): Promise<m.ListCredentialVersionsResponse> {
    return this.#conn.unary((md, o, cb) => this.#credentials.ListCredentialVersions(request, md, o, cb), options);
  }

  rollbackCredential(request: m.RollbackCredentialRequestInput, options?: CallOptions): Promise<m.RollbackCredentialResponse> {
    return this.#conn.unary((md, o, cb) => this.#credentials.RollbackCredential(request, md, o, cb), options);
  }

  setDefaultProfile(request: m.SetDefaultProfileRequestInput, options?: CallOptions): Promise<m.SetDefaultProfileResponse> {
    return this.#conn.unary((md, o, cb) => this.#credentials.SetDefaultProfile(request, md, o, cb), options);
  }

  listBindings(request: m.ListBindingsRequestInput = {}, options?: CallOptions): Promise<m.ListBindingsResponse> {
    return this.#conn.unary((md, o, cb) => this.#credentials.ListBindings(request, md, o, cb), options);
  }

  // Sets, changes or clears (empty newPin) the approval PIN.
  setApprovalPin(request: m.SetApprovalPinRequestInput, options?: CallOptions): Promise<m.SetApprovalPinResponse> {
    return this.#conn.unary((md, o, cb) => this.#credentials.SetApprovalPin(request, md, o, cb), options);
  }

  getApprovalPinStatus(request: m.GetApprovalPinStatusRequestInput = {}, options?: CallOptions): Promise<m.ApprovalPinStatus> {
    return this.#conn.unary((md, o, cb) => this.#credentials.GetApprovalPinStatus(request, md, o, cb), options);
  }

  // Passkeys: registration (the ceremony runs in a browser; finishing needs
  // the typed PIN), list, removal (the PIN too).
  beginPasskeyRegistration(request: m.BeginPasskeyRegistrationRequestInput = {}, options?: CallOptions): Promise<m.PasskeyChallenge> {
    return this.#conn.unary((md, o, cb) => this.#credentials.BeginPasskeyRegistration(request, md, o, cb), options);
  }

  finishPasskeyRegistration(request: m.FinishPasskeyRegistrationRequestInput, options?: CallOptions): Promise<m.Passkey> {
    return this.#conn.unary((md, o, cb) => this.#credentials.FinishPasskeyRegistration(request, md, o, cb), options);
  }

  listPasskeys(request: m.ListPasskeysRequestInput = {}, options?: CallOptions): Promise<m.ListPasskeysResponse> {
    return this.#conn.unary((md, o, cb) => this.#credentials.ListPasskeys(request, md, o, cb), options);
  }

  removePasskey(request: m.RemovePasskeyRequestInput, options?: CallOptions): Promise<m.RemovePasskeyResponse> {
    return this.#conn.unary((md, o, cb) => this.#credentials.RemovePasskey(request, md, o, cb), options);
  }

  verifyAuditLog(request: m.VerifyAuditLogRequestInput = {}, options?: CallOptions): Promise<m.VerifyAuditLogResponse> {
    return this.#conn.unary((md, o, cb) => this.#credentials.VerifyAuditLog(request, md, o, cb), options);
  }
}
