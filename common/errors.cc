#include "common/errors.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_split.h"

namespace credbroker {
namespace {

constexpr char kViolationsUrl[] = "credbroker/field_violations";

// Encoding: for each violation, "field" NUL "description" NUL.
std::string Encode(const std::vector<FieldViolation>& violations) {
  std::string out;
  for (const auto& v : violations) {
    out.append(v.field);
    out.push_back('\0');
    out.append(v.description);
    out.push_back('\0');
  }
  return out;
}

}  // namespace

absl::Status InvalidArgumentWithViolations(
    absl::string_view message, const std::vector<FieldViolation>& violations) {
  absl::Status status = absl::InvalidArgumentError(message);
  SetFieldViolations(status, violations);
  return status;
}

void SetFieldViolations(absl::Status& status,
                        const std::vector<FieldViolation>& violations) {
  if (status.ok()) return;
  status.SetPayload(kViolationsUrl, absl::Cord(Encode(violations)));
}

std::vector<FieldViolation> GetFieldViolations(const absl::Status& status) {
  std::vector<FieldViolation> out;
  auto payload = status.GetPayload(kViolationsUrl);
  if (!payload.has_value()) return out;
  std::string flat(*payload);
  std::vector<std::string> parts = absl::StrSplit(flat, '\0');
  for (size_t i = 0; i + 1 < parts.size(); i += 2) {
    out.push_back({parts[i], parts[i + 1]});
  }
  return out;
}

}  // namespace credbroker
