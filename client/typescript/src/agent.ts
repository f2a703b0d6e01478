// AgentClient: the deployment agent's side (CredentialBroker), for
// TypeScript tools that ask for credentials. Needs the agent token.
import * as grpc from '@grpc/grpc-js';

import { CallOptions, ConnectOptions, Connection } from './connection';
import type { CredentialBrokerClient } from './generated/credbroker/v1/CredentialBroker';
import type * as m from './generated/messages';
import { loadServices } from './proto';

export interface RequestCredentialOptions extends CallOptions {
  // Reusing a session key within the broker's grace period re-attaches to
  // the session's pending needs.
  sessionKey?: string;
}

// Default deadline of a RequestCredential stream: longer than the broker's
// default pending timeout (10 minutes), so the broker's EXPIRED comes first.
const REQUEST_TIMEOUT_MS = 15 * 60_000;

export class AgentClient {
  readonly #conn: Connection;
  readonly #broker: CredentialBrokerClient;

  private constructor(conn: Connection) {
    this.#conn = conn;
    this.#broker = new (loadServices().CredentialBroker)(
      conn.address, grpc.credentials.createInsecure(), conn.clientOptions());
  }

  // Like CredbrokerClient.connect, with agent.token by default.
  static async connect(options: ConnectOptions = {}): Promise<AgentClient> {
    return new AgentClient(await Connection.open(options, 'agent'));
  }

  close(): void {
    this.#conn.close();
  }

  // Asks for one credential: the broker's updates for the need (PENDING_APPROVAL
  // or NEEDS_INPUT, then GRANTED with the grant, DENIED, EXPIRED or
  // CANCELLED), ending after the terminal one. The grant's values are
  // secrets: the caller owns them. Errors are BrokerErrors, thrown from
  // the iterator.
  async *requestCredential(need: m.CredentialNeededInput,
                           options: RequestCredentialOptions = {}): AsyncGenerator<m.NeedUpdate> {
    this.#conn.checkOpen();
    const stream = this.#broker.RequestCredential(
      { need, sessionKey: options.sessionKey ?? '' }, this.#conn.metadata(),
      { deadline: this.#conn.deadline(options.timeoutMs ?? REQUEST_TIMEOUT_MS) });
    const onAbort = (): void => stream.cancel();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const update of stream as AsyncIterable<m.NeedUpdate>) yield update;
    } catch (e) {
      throw this.#conn.toError(e);
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      stream.cancel();
    }
  }

  // Ends a grant before it expires.
  releaseGrant(request: m.ReleaseGrantRequestInput, options?: CallOptions): Promise<m.ReleaseGrantResponse> {
    return this.#conn.unary((md, o, cb) => this.#broker.ReleaseGrant(request, md, o, cb), options);
  }
}
