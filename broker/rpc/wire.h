// Message bytes the broker parses and serializes itself, for streams whose
// methods are raw (their messages are grpc::ByteBuffer): parsing that names
// the string field holding invalid UTF-8 instead of failing the whole
// message, and serializing into memory that is wiped when gRPC releases it.
// Thread-safe, no state but a counter of wiped buffers' bytes.
#ifndef CREDBROKER_BROKER_RPC_WIRE_H_
#define CREDBROKER_BROKER_RPC_WIRE_H_

#include <google/protobuf/message.h>
#include <grpcpp/support/byte_buffer.h>

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/errors.h"
#include "credbroker/v1/credential_broker.pb.h"

namespace credbroker {

// Parses `bytes` into `out`. A string field (at any depth) that is not
// valid UTF-8, which the protobuf parser refuses as a whole, is named in
// `invalid_utf8` ("need.action", "need.context.<key>", "need.context.<key>
// (key)") and parsed as its text escaped with EscapeForTerminal. False when
// the bytes are not a message of `out`'s type for another reason.
bool ParseNamingInvalidUtf8(const grpc::ByteBuffer& bytes,
                            google::protobuf::Message* out,
                            std::vector<FieldViolation>* invalid_utf8);

// An agent's stream message (a SessionRequest, a RequestCredentialRequest)
// parsed from `bytes`: INVALID_ARGUMENT when they are not one at all, or
// with a field violation for each string field holding invalid UTF-8
// (`message` is parsed all the same, so that a need can be refused by its
// id: RejectedNeed).
absl::Status ParseAgentMessage(const grpc::ByteBuffer& bytes,
                               google::protobuf::Message* message);

// The answer to a need refused with `status` (its field violations become
// field_errors): the need alone is rejected, the session goes on.
v1::NeedUpdate RejectedNeed(const std::string& need_id,
                            const absl::Status& status);

// `message` serialized into one slice of memory that is wiped when the last
// reference to it (ours or gRPC's, after the write) is released.
grpc::ByteBuffer SerializeWiped(const google::protobuf::MessageLite& message);

// Bytes held in SerializeWiped buffers not yet wiped (all threads).
size_t LiveWipedBytes();

// Wipes the values of `update`'s grant (the only secret it carries).
void WipeGrantValues(v1::NeedUpdate& update);

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_WIRE_H_
