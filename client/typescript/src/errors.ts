// BrokerError: every failure of a call to the broker, with the gRPC code's
// name, the broker's message and its google.rpc.BadRequest field
// violations.
import * as grpc from '@grpc/grpc-js';

import type { BadRequest } from './generated/google/rpc/BadRequest';
import type { Status } from './generated/google/rpc/Status';
import { decodeMessage } from './proto';

// The canonical gRPC status code names.
export type StatusCodeName =
  | 'OK'
  | 'CANCELLED'
  | 'UNKNOWN'
  | 'INVALID_ARGUMENT'
  | 'DEADLINE_EXCEEDED'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'PERMISSION_DENIED'
  | 'RESOURCE_EXHAUSTED'
  | 'FAILED_PRECONDITION'
  | 'ABORTED'
  | 'OUT_OF_RANGE'
  | 'UNIMPLEMENTED'
  | 'INTERNAL'
  | 'UNAVAILABLE'
  | 'DATA_LOSS'
  | 'UNAUTHENTICATED';

// One field the broker refused, and how to fix it ("access_key_id": "must
// be 20 characters, starting with AKIA or ASIA").
export interface FieldViolation {
  field: string;
  description: string;
}

const BAD_REQUEST_TYPE = 'type.googleapis.com/google.rpc.BadRequest';
const STATUS_DETAILS_KEY = 'grpc-status-details-bin';

// A failed call. `message` is the broker's message as it sent it (safe to
// show a user: the broker never puts a secret in one); `code` the status
// code's name; `fieldViolations` is empty unless the broker sent a
// google.rpc.BadRequest (INVALID_ARGUMENT for bad values).
export class BrokerError extends Error {
  readonly code: StatusCodeName;
  readonly grpcCode: grpc.status;
  readonly fieldViolations: FieldViolation[];

  constructor(code: grpc.status, message: string, fieldViolations: FieldViolation[] = []) {
    super(message);
    this.name = 'BrokerError';
    this.grpcCode = code;
    this.code = codeName(code);
    this.fieldViolations = fieldViolations;
  }

  override toString(): string {
    const lines = [`${this.name} [${this.code}]: ${this.message}`];
    for (const v of this.fieldViolations) lines.push(`  ${v.field}: ${v.description}`);
    return lines.join('\n');
  }
}

export function isBrokerError(e: unknown): e is BrokerError {
  return e instanceof BrokerError;
}

export function codeName(code: grpc.status): StatusCodeName {
  const name = (grpc.status as unknown as Record<number, string>)[code];
  return (name ?? 'UNKNOWN') as StatusCodeName;
}

// The field violations of every google.rpc.BadRequest in a status-details
// trailer. An undecodable trailer yields none rather than hiding the error.
export function fieldViolationsFromTrailer(metadata: grpc.Metadata | undefined): FieldViolation[] {
  const out: FieldViolation[] = [];
  if (metadata === undefined) return out;
  for (const value of metadata.get(STATUS_DETAILS_KEY)) {
    if (typeof value === 'string') continue;
    try {
      const status = decodeMessage<Status>('google.rpc.Status', value);
      for (const detail of status.details) {
        if (detail.type_url !== BAD_REQUEST_TYPE) continue;
        const bad = decodeMessage<BadRequest>('google.rpc.BadRequest', detail.value);
        for (const v of bad.fieldViolations) {
          out.push({ field: v.field, description: v.description });
        }
      }
    } catch {
      // Not a google.rpc.Status: nothing to add.
    }
  }
  return out;
}

// The one conversion of a grpc-js error into a BrokerError. `unreachable`
// names the broker's address when the channel never connected, so that an
// UNAVAILABLE that did not come from the broker says what to check.
export function fromServiceError(error: unknown, unreachable?: string): BrokerError {
  if (error instanceof BrokerError) return error;
  const e = error as Partial<grpc.ServiceError>;
  if (typeof e.code !== 'number') {
    return new BrokerError(grpc.status.UNKNOWN, error instanceof Error ? error.message : String(error));
  }
  let message = e.details ?? e.message ?? '';
  if (e.code === grpc.status.UNAVAILABLE && unreachable !== undefined) {
    message = `cannot reach the broker at ${unreachable}: ${message} (is credbrokerd running?)`;
  }
  return new BrokerError(e.code, message, fieldViolationsFromTrailer(e.metadata));
}

// What the broker says, with FAILED_PRECONDITION, to every call but
// LockService's and health's while its store is locked.
const LOCKED_MESSAGE = /\bcredential store is locked\b/;

// Whether `e` is the broker's answer while its store is locked (started
// without its passphrase): unlock it with CredbrokerClient.unlock(), or
// `credctl unlock`, then call again.
export function isStoreLocked(e: unknown): e is BrokerError {
  return e instanceof BrokerError && e.grpcCode === grpc.status.FAILED_PRECONDITION &&
    LOCKED_MESSAGE.test(e.message);
}
