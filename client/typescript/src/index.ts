// @credbroker/client: typed, promise-based calls to credbrokerd, the local
// credential broker, over its Unix socket or TLS TCP.
//
//   const client = await CredbrokerClient.connect();   // the default data dir
//   for await (const item of client.watchRequests({ signal })) { ... }
//   await client.approve({ requestId, scope: 'SCOPE_ONCE' });
//
// Message and enum types are generated from protos/ (camelCase fields, int64
// as number, enums as their names, unset messages null); requests take the
// permissive `...Input` types, responses are the plain names.

export { CredbrokerClient } from './client';
export type { ServingStatus } from './client';
export { AgentClient } from './agent';
export type { RequestCredentialOptions } from './agent';
export {
  DEFAULT_TIMEOUT_MS,
  defaultAddress,
  defaultDataDir,
  defaultTokenFile,
  readTokenFile,
} from './connection';
export type { CallOptions, ConnectOptions, Role } from './connection';
export { BrokerError, isBrokerError, isStoreLocked } from './errors';
export type { FieldViolation, StatusCodeName } from './errors';
export type { RequestWatch, WatchItem, WatchOptions } from './watch';
export { durationFromMs, durationToMs, toDate } from './time';

// Generated from the .proto files.
export * from './generated/messages';
export {
  _credbroker_v1_ApprovalEvent_Kind as ApprovalEventKind,
  _credbroker_v1_ResourceBinding_State as ResourceBindingState,
  _grpc_health_v1_HealthCheckResponse_ServingStatus as HealthServingStatus,
} from './generated/messages';
