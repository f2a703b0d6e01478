#include "broker/rpc/wire.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/unknown_field_set.h>

#include <atomic>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/secret.h"
#include "common/text.h"

namespace credbroker {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;

// Deeper nesting than any credbroker.v1 message: not walked.
constexpr int kMaxDepth = 8;

std::atomic<size_t> live_wiped_bytes{0};

void WipeAndFree(void* user_data) {
  auto* bytes = static_cast<std::string*>(user_data);
  live_wiped_bytes.fetch_sub(bytes->size());
  WipeString(*bytes);
  delete bytes;
}

// The name a violation gives `field` of a message at `path`: map entries
// are named by their key, as CheckNeed names them.
std::string FieldPath(const std::string& path, const Descriptor& type,
                      const FieldDescriptor& field,
                      const std::string& map_key) {
  if (type.options().map_entry()) {
    return field.number() == 1 ? absl::StrCat(path, ".", map_key, " (key)")
                               : absl::StrCat(path, ".", map_key);
  }
  return path.empty() ? field.name() : absl::StrCat(path, ".", field.name());
}

// Replaces the invalid UTF-8 in the string fields of `bytes` (a message of
// `type`) with its escaped text, naming each field. False when `bytes` is
// not wire format.
bool Repair(std::string* bytes, const Descriptor& type, const std::string& path,
            int depth, std::vector<FieldViolation>* invalid, bool* changed) {
  UnknownFieldSet fields;
  if (!fields.ParseFromString(*bytes)) return false;
  std::string map_key;
  if (type.options().map_entry()) {
    for (int i = 0; i < fields.field_count(); ++i) {
      const UnknownField& f = fields.field(i);
      if (f.number() == 1 && f.type() == UnknownField::TYPE_LENGTH_DELIMITED) {
        map_key = EscapeForTerminal(f.length_delimited());
      }
    }
  }
  bool here = false;
  for (int i = 0; i < fields.field_count(); ++i) {
    UnknownField* f = fields.mutable_field(i);
    const FieldDescriptor* field = type.FindFieldByNumber(f->number());
    if (field == nullptr || f->type() != UnknownField::TYPE_LENGTH_DELIMITED)
      continue;
    std::string* data = f->mutable_length_delimited();
    if (field->type() == FieldDescriptor::TYPE_STRING) {
      std::optional<size_t> at = FindInvalidUtf8(*data);
      if (!at.has_value()) continue;
      invalid->push_back(
          {FieldPath(path, type, *field, map_key),
           absl::StrFormat(
               "contains invalid UTF-8 (byte 0x%02X at byte %d): the approver "
               "reads this text, so send plain printable UTF-8",
               static_cast<uint8_t>((*data)[*at]), *at)});
      *data = EscapeForTerminal(*data);
      here = true;
    } else if (field->type() == FieldDescriptor::TYPE_MESSAGE &&
               depth < kMaxDepth) {
      if (!Repair(data, *field->message_type(),
                  FieldPath(path, type, *field, map_key), depth + 1, invalid,
                  &here)) {
        return false;
      }
    }
  }
  if (here) {
    bytes->clear();
    if (!fields.SerializeToString(bytes)) return false;
    *changed = true;
  }
  return true;
}

}  // namespace

bool ParseNamingInvalidUtf8(const grpc::ByteBuffer& bytes,
                            google::protobuf::Message* out,
                            std::vector<FieldViolation>* invalid_utf8) {
  grpc::Slice flat;
  if (!bytes.DumpToSingleSlice(&flat).ok()) return false;
  std::string wire(reinterpret_cast<const char*>(flat.begin()), flat.size());
  // Repaired before parsing: the parser would refuse the whole message (and
  // log a line per bad field, which a caller could repeat at will).
  bool changed = false;
  if (!Repair(&wire, *out->GetDescriptor(), "", 0, invalid_utf8, &changed))
    return false;
  return out->ParseFromString(wire);
}

grpc::ByteBuffer SerializeWiped(const google::protobuf::MessageLite& message) {
  // Sized once: a growing string would leave copies behind in freed memory.
  auto* bytes = new std::string(message.ByteSizeLong(), '\0');
  message.SerializeToArray(bytes->data(), static_cast<int>(bytes->size()));
  live_wiped_bytes.fetch_add(bytes->size());
  grpc::Slice slice(bytes->data(), bytes->size(), &WipeAndFree, bytes);
  return grpc::ByteBuffer(&slice, 1);
}

size_t LiveWipedBytes() { return live_wiped_bytes.load(); }

void WipeGrantValues(v1::NeedUpdate& update) {
  if (!update.has_grant()) return;
  for (auto& [name, value] : *update.mutable_grant()->mutable_values())
    WipeString(value);
  update.mutable_grant()->mutable_values()->clear();
}

absl::Status ParseAgentMessage(const grpc::ByteBuffer& bytes,
                               google::protobuf::Message* message) {
  std::vector<FieldViolation> invalid;
  if (!ParseNamingInvalidUtf8(bytes, message, &invalid)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the message must be a ", message->GetDescriptor()->full_name()));
  }
  if (invalid.empty()) return absl::OkStatus();
  return InvalidArgumentWithViolations(
      "the message holds text that is not valid UTF-8", invalid);
}

v1::NeedUpdate RejectedNeed(const std::string& need_id,
                            const absl::Status& status) {
  v1::NeedUpdate u;
  u.set_need_id(need_id);
  u.set_state(v1::REQUEST_STATE_REJECTED);
  u.set_error_code(absl::StatusCodeToString(status.code()));
  u.set_reason(std::string(status.message()));
  for (const FieldViolation& v : GetFieldViolations(status)) {
    v1::Finding* f = u.add_field_errors();
    f->set_field(v.field);
    f->set_severity(v1::SEVERITY_ERROR);
    f->set_message(v.description);
  }
  return u;
}

}  // namespace credbroker
