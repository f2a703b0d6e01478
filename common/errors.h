// Status helpers shared by every layer: INVALID_ARGUMENT statuses that carry
// per-field violations (converted to google.rpc.BadRequest at the gRPC
// boundary), without any protobuf or gRPC type in core code.
#ifndef CREDBROKER_COMMON_ERRORS_H_
#define CREDBROKER_COMMON_ERRORS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace credbroker {

struct FieldViolation {
  std::string field;        // e.g. "values.access_key_id"
  std::string description;  // What is wrong and how to fix it; never a value.
};

// INVALID_ARGUMENT with `message` and the violations attached as a payload.
absl::Status InvalidArgumentWithViolations(
    absl::string_view message, const std::vector<FieldViolation>& violations);

// The violations attached by InvalidArgumentWithViolations (empty if none).
std::vector<FieldViolation> GetFieldViolations(const absl::Status& status);

// Attaches violations to any status (replacing earlier ones).
void SetFieldViolations(absl::Status& status,
                        const std::vector<FieldViolation>& violations);

}  // namespace credbroker

#endif  // CREDBROKER_COMMON_ERRORS_H_
