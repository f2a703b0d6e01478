// Internal: the loaded proto definitions (service constructors for grpc-js,
// and protobufjs types for decoding error details). Not part of the public
// API. Everything comes from generated/descriptor.ts; no .proto file is read
// at run time.
//
// The service definitions are built here from one protobufjs Root, with the
// same serializers @grpc/proto-loader makes (fromObject/encode,
// decode/toObject with LOADER_OPTIONS), rather than by proto-loader's
// fromJSON: that one also encodes every file's and every message's
// descriptor (for reflection, which a client never uses), about 1.3 MiB of
// heap that stayed live and more garbage, in the IDE's extension host.
// proto-loader still generates the types (scripts/generate.mjs).
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
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

// What proto-loader's serializers do, for one message type.
function serializer(type: protobuf.Type): (value: object) => Buffer {
  return (value) => {
    if (Array.isArray(value)) {
      throw new Error(`Failed to serialize message: expected object with ${type.name} structure, got array instead`);
    }
    // A Buffer under Node (protobufjs's BufferWriter), as proto-loader returns.
    return type.encode(type.fromObject(value)).finish() as Buffer;
  };
}

function deserializer(type: protobuf.Type): (bytes: Buffer) => object {
  return (bytes) => type.toObject(type.decode(bytes), LOADER_OPTIONS as protobuf.IConversionOptions);
}

// "WatchRequests" -> "watchRequests": proto-loader's alias of a method
// (lodash's camelCase, the same for these PascalCase names).
function lowerFirst(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

// The grpc-js client constructor of the service `fullName`, as
// grpc.loadPackageDefinition makes it from proto-loader's definition.
function clientConstructor(fullName: string): grpc.ServiceClientConstructor {
  const service = protoRoot().lookupService(fullName);
  const methods: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const m of service.methodsArray) {
    const request = m.resolvedRequestType!;
    const response = m.resolvedResponseType!;
    methods[m.name] = {
      path: `/${fullName}/${m.name}`,
      requestStream: m.requestStream === true,
      responseStream: m.responseStream === true,
      requestSerialize: serializer(request),
      requestDeserialize: deserializer(request),
      responseSerialize: serializer(response),
      responseDeserialize: deserializer(response),
      originalName: lowerFirst(m.name),
    };
  }
  return grpc.makeClientConstructor(methods, service.name, {});
}

// The grpc-js client constructors, built once.
export function loadServices(): Services {
  if (services === undefined) {
    services = {
      ApprovalService: clientConstructor('credbroker.v1.ApprovalService') as unknown as Services['ApprovalService'],
      CredentialService: clientConstructor('credbroker.v1.CredentialService') as unknown as Services['CredentialService'],
      CredentialBroker: clientConstructor('credbroker.v1.CredentialBroker') as unknown as Services['CredentialBroker'],
      LockService: clientConstructor('credbroker.v1.LockService') as unknown as Services['LockService'],
      Health: clientConstructor('grpc.health.v1.Health') as unknown as Services['Health'],
    };
  }
  return services;
}

// The protobufjs root of every definition: the services' message types and
// the status details. Built once.
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
