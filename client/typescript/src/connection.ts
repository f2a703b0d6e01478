// Where the broker is, which token to send, and the one channel a client
// uses: the same rules as credctl (client/cli, client/internal/channel.cc).
import { constants as fsConstants, promises as fs } from 'node:fs';
import * as path from 'node:path';

import * as grpc from '@grpc/grpc-js';

import { BrokerError, fromServiceError } from './errors';

export type Role = 'approver' | 'agent';

export interface ConnectOptions {
  // "unix:/path/broker.sock" or "HOST:PORT" (TCP, TLS unless
  // insecurePlaintext). Default: unix:<dataDir>/broker.sock.
  address?: string;
  // The broker's data directory. Default: defaultDataDir().
  dataDir?: string;
  // The bearer token itself. Default: read from tokenFile.
  token?: string;
  // Default: <dataDir>/approver.token (agent.token for an AgentClient).
  tokenFile?: string;
  // Deadline of each unary call, in milliseconds. Default 30 000.
  timeoutMs?: number;
  // TLS for a TCP address: the certificate(s) to trust (PEM). Default:
  // <dataDir>/tls.crt (the broker's self-signed one) when it exists, else
  // the system's roots.
  tlsCaFile?: string;
  // A client certificate and its key (PEM files), for a broker started with
  // --tls_client_ca.
  tlsCertFile?: string;
  tlsKeyFile?: string;
  // Plaintext TCP, for a broker run with --insecure_plaintext_tcp.
  insecurePlaintext?: boolean;
  // Extra grpc-js channel options.
  channelOptions?: grpc.ChannelOptions;
}

// Per-call options.
export interface CallOptions {
  // Overrides the client's deadline for this call.
  timeoutMs?: number;
  // Aborting cancels the call, which then fails with CANCELLED.
  signal?: AbortSignal;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

// The broker's data directory as credbrokerd and credctl find it:
// $CREDBROKER_DATA_DIR, else $XDG_DATA_HOME/credbroker, else
// $HOME/.local/share/credbroker.
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CREDBROKER_DATA_DIR) return env.CREDBROKER_DATA_DIR;
  if (env.XDG_DATA_HOME) return path.join(env.XDG_DATA_HOME, 'credbroker');
  return path.join(env.HOME || '/tmp', '.local/share/credbroker');
}

// unix:<dataDir>/broker.sock.
export function defaultAddress(dataDir: string = defaultDataDir()): string {
  return `unix:${path.join(dataDir, 'broker.sock')}`;
}

// <dataDir>/<role>.token.
export function defaultTokenFile(role: Role, dataDir: string = defaultDataDir()): string {
  return path.join(dataDir, `${role}.token`);
}

const ASCII_SPACE = /^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g;

// Reads a token file, without its leading and trailing whitespace (the
// newline an editor or `echo` adds). NOT_FOUND with a hint when it is absent;
// INVALID_ARGUMENT when it is empty or holds what a header cannot carry.
export async function readTokenFile(file: string): Promise<string> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new BrokerError(grpc.status.NOT_FOUND,
        `token file ${file} not found: start credbrokerd first (it creates the token files ` +
        'in its data directory), or pass tokenFile');
    }
    throw new BrokerError(grpc.status.PERMISSION_DENIED,
      `cannot read token file ${file}: ${(e as Error).message}`);
  }
  return checkToken(text.replace(ASCII_SPACE, ''), `token file ${file}`);
}

function checkToken(token: string, where: string): string {
  if (token === '') throw new BrokerError(grpc.status.INVALID_ARGUMENT, `${where} is empty`);
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new BrokerError(grpc.status.INVALID_ARGUMENT,
      `${where} holds characters a bearer token cannot have (only printable ASCII)`);
  }
  return token;
}

async function readable(file: string): Promise<boolean> {
  try {
    await fs.access(file, fsConstants.R_OK);
    return true;
  } catch {
    return false;
  }
}

async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (e) {
    throw new BrokerError(grpc.status.FAILED_PRECONDITION,
      `cannot read the TLS ${what} file ${file}: ${(e as Error).message}`);
  }
}

async function channelCredentials(address: string, dataDir: string,
                                  options: ConnectOptions): Promise<grpc.ChannelCredentials> {
  if (address.startsWith('unix:') || options.insecurePlaintext) {
    return grpc.credentials.createInsecure();
  }
  let caFile = options.tlsCaFile;
  if (caFile === undefined) {
    const generated = path.join(dataDir, 'tls.crt');
    if (await readable(generated)) caFile = generated;
  }
  const ca = caFile === undefined ? null : await readPem(caFile, 'CA');
  if ((options.tlsCertFile === undefined) !== (options.tlsKeyFile === undefined)) {
    throw new BrokerError(grpc.status.INVALID_ARGUMENT,
      'a TLS client certificate needs its key, and a key its certificate');
  }
  if (options.tlsCertFile !== undefined && options.tlsKeyFile !== undefined) {
    const cert = await readPem(options.tlsCertFile, 'certificate');
    const key = await readPem(options.tlsKeyFile, 'key');
    const creds = grpc.credentials.createSsl(ca, key, cert);
    key.fill(0);
    return creds;
  }
  return grpc.credentials.createSsl(ca);
}

// Internal: one channel to the broker with its token and deadline. Shared by
// the service stubs of a client.
export class Connection {
  readonly address: string;
  readonly timeoutMs: number;
  readonly channel: grpc.Channel;
  readonly #token: string;
  #closed = false;
  readonly #closeListeners = new Set<() => void>();

  private constructor(address: string, token: string, timeoutMs: number, channel: grpc.Channel) {
    this.address = address;
    this.#token = token;
    this.timeoutMs = timeoutMs;
    this.channel = channel;
  }

  static async open(options: ConnectOptions, role: Role): Promise<Connection> {
    const dataDir = options.dataDir ?? defaultDataDir();
    const address = options.address ?? defaultAddress(dataDir);
    const token = options.token !== undefined
      ? checkToken(options.token.replace(ASCII_SPACE, ''), 'the token')
      : await readTokenFile(options.tokenFile ?? defaultTokenFile(role, dataDir));
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(timeoutMs > 0)) {
      throw new BrokerError(grpc.status.INVALID_ARGUMENT, 'timeoutMs must be positive');
    }
    const creds = await channelCredentials(address, dataDir, options);
    const channelOptions: grpc.ChannelOptions = {
      'grpc.max_receive_message_length': 16 << 20,
      // A local broker that restarts is back within moments: the channel's
      // own reconnect backoff (calls fail at once while it lasts) stays
      // short instead of growing to minutes.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 2_000,
      ...options.channelOptions,
    };
    let channel: grpc.Channel;
    try {
      channel = new grpc.Channel(address, creds, channelOptions);
    } catch (e) {
      throw new BrokerError(grpc.status.INVALID_ARGUMENT,
        `bad broker address ${address}: ${(e as Error).message}`);
    }
    return new Connection(address, token, timeoutMs, channel);
  }

  // Options for a service stub that uses this connection's channel.
  clientOptions(): grpc.ClientOptions {
    return { channelOverride: this.channel };
  }

  metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${this.#token}`);
    return md;
  }

  deadline(timeoutMs?: number): Date {
    return new Date(Date.now() + (timeoutMs ?? this.timeoutMs));
  }

  // The address when the channel is not connected: an UNAVAILABLE then did
  // not come from the broker.
  unreachable(): string | undefined {
    return this.channel.getConnectivityState(false) === grpc.connectivityState.READY
      ? undefined
      : this.address;
  }

  toError(e: unknown): BrokerError {
    return fromServiceError(e, this.unreachable());
  }

  // Runs one unary call with the token, a deadline and cancellation.
  unary<T>(
    invoke: (md: grpc.Metadata, opts: grpc.CallOptions,
             cb: (err: grpc.ServiceError | null, value?: T) => void) => grpc.ClientUnaryCall,
    options: CallOptions = {},
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const signal = options.signal;
      if (signal?.aborted) {
        reject(new BrokerError(grpc.status.CANCELLED, 'the call was aborted before it started'));
        return;
      }
      let onAbort: (() => void) | undefined;
      let call: grpc.ClientUnaryCall;
      try {
        this.checkOpen();
        call = invoke(this.metadata(), { deadline: this.deadline(options.timeoutMs) },
          (err, value) => {
            if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
            if (err !== null) reject(this.toError(err));
            else resolve(value as T);
          });
      } catch (e) {
        reject(this.toError(e));
        return;
      }
      if (signal !== undefined) {
        onAbort = () => call.cancel();
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  }

  // Resolves once the channel is connected; UNAVAILABLE when it is not
  // within timeoutMs.
  waitForReady(timeoutMs?: number): Promise<void> {
    const deadline = this.deadline(timeoutMs);
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        const state = this.channel.getConnectivityState(true);
        if (state === grpc.connectivityState.READY) {
          resolve();
          return;
        }
        if (state === grpc.connectivityState.SHUTDOWN) {
          reject(new BrokerError(grpc.status.FAILED_PRECONDITION, 'the client is closed'));
          return;
        }
        this.channel.watchConnectivityState(state, deadline, (err) => {
          if (err !== undefined) {
            reject(new BrokerError(grpc.status.UNAVAILABLE,
              `cannot reach the broker at ${this.address} (is credbrokerd running?)`));
          } else {
            check();
          }
        });
      };
      check();
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  // Throws FAILED_PRECONDITION once the client is closed.
  checkOpen(): void {
    if (this.#closed) throw new BrokerError(grpc.status.FAILED_PRECONDITION, 'the client is closed');
  }

  // Calls `listener` once, at close(); returns its removal.
  onClose(listener: () => void): () => void {
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const listeners = [...this.#closeListeners];
    this.#closeListeners.clear();
    for (const listener of listeners) listener();
    this.channel.close();
  }
}
