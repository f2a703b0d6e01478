// Internal: the loaded proto definitions (service constructors for grpc-js,
// and protobufjs types for decoding error details). Not part of the public
// API. Everything comes from generated/descriptor.ts; no .proto file is read
// at run time.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';

import { descriptor } from './generated/descriptor';
import type { ApprovalServiceClient } from './generated/credbroker/v1/ApprovalService';
import type { CredentialBrokerClient } from './generated/credbroker/v1/CredentialBroker';
import type { CredentialServiceClient } from './generated/credbroker/v1/CredentialService';
import type { LockServiceClient } from './generated/credbroker/v1/LockService';
import type { HealthClient } from './generated/grpc/health/v1/Health';

// The conversions the generated types assume (scripts/generate.mjs passes
// the same to proto-loader-gen-types): int64 as number, enums as their
// names, every field present (unset messages null), oneofs named.
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

type ServiceConstructor<C> = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => C;

export interface Services {
  ApprovalService: ServiceConstructor<ApprovalServiceClient>;
  CredentialService: ServiceConstructor<CredentialServiceClient>;
  CredentialBroker: ServiceConstructor<CredentialBrokerClient>;
  LockService: ServiceConstructor<LockServiceClient>;
  Health: ServiceConstructor<HealthClient>;
}

let services: Services | undefined;
let root: protobuf.Root | undefined;

function lookup(pkg: grpc.GrpcObject, path: string): unknown {
  let node: unknown = pkg;
  for (const part of path.split('.')) {
    node = (node as Record<string, unknown>)[part];
    if (node === undefined) throw new Error(`proto definitions lack ${path}`);
  }
  return node;
}

// The grpc-js client constructors, loaded once.
export function loadServices(): Services {
  if (services === undefined) {
    const definition = protoLoader.fromJSON(descriptor, LOADER_OPTIONS);
    const pkg = grpc.loadPackageDefinition(definition);
    services = {
      ApprovalService: lookup(pkg, 'credbroker.v1.ApprovalService') as Services['ApprovalService'],
      CredentialService: lookup(pkg, 'credbroker.v1.CredentialService') as Services['CredentialService'],
      CredentialBroker: lookup(pkg, 'credbroker.v1.CredentialBroker') as Services['CredentialBroker'],
      LockService: lookup(pkg, 'credbroker.v1.LockService') as Services['LockService'],
      Health: lookup(pkg, 'grpc.health.v1.Health') as Services['Health'],
    };
  }
  return services;
}

// The protobufjs root, for decoding messages outside a call (status details).
export function protoRoot(): protobuf.Root {
  if (root === undefined) {
    root = protobuf.Root.fromJSON(descriptor as protobuf.INamespace);
    root.resolveAll();
  }
  return root;
}

// Decodes `bytes` as the message `typeName` into the same plain-object shape
// as the generated output types.
export function decodeMessage<T>(typeName: string, bytes: Uint8Array): T {
  const type = protoRoot().lookupType(typeName);
  return type.toObject(type.decode(bytes), {
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  }) as T;
}
