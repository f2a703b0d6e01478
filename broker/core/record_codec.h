// The plaintext layout of a sealed credential record: its field values,
// encoded into (and decoded from) wiped memory only.
//
// Layout: a version byte (1), then for each field a varint name length, the
// name, a varint value length and the value. Names are sorted and unique.
#ifndef CREDBROKER_BROKER_CORE_RECORD_CODEC_H_
#define CREDBROKER_BROKER_CORE_RECORD_CODEC_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/secret.h"

namespace credbroker {

SecretBytes EncodeFieldValues(const FieldValues& values);

// DATA_LOSS when `plaintext` is not a well-formed record.
absl::StatusOr<FieldValues> DecodeFieldValues(const SecretBytes& plaintext);

// The associated data that binds a sealed record to its identity.
std::string RecordAssociatedData(absl::string_view provider,
                                 absl::string_view profile, int64_t version);

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CORE_RECORD_CODEC_H_
