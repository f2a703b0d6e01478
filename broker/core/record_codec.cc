#include "broker/core/record_codec.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace credbroker {
namespace {

constexpr uint8_t kFormatVersion = 1;
constexpr size_t kMaxLength = 1 << 24;

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

uint8_t* PutVarint(uint8_t* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<uint8_t>(v);
  return p;
}

bool GetVarint(const uint8_t*& p, const uint8_t* end, uint64_t& out) {
  out = 0;
  for (int shift = 0; shift < 35 && p < end; shift += 7) {
    uint8_t b = *p++;
    out |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace

SecretBytes EncodeFieldValues(const FieldValues& values) {
  size_t total = 1;
  for (const auto& [name, value] : values) {
    total += VarintSize(name.size()) + name.size() + VarintSize(value.size()) +
             value.size();
  }
  SecretBytes out = SecretBytes::Zeroed(total);
  uint8_t* p = out.mutable_data();
  *p++ = kFormatVersion;
  for (const auto& [name, value] : values) {
    p = PutVarint(p, name.size());
    std::memcpy(p, name.data(), name.size());
    p += name.size();
    p = PutVarint(p, value.size());
    if (!value.empty()) std::memcpy(p, value.data(), value.size());
    p += value.size();
  }
  return out;
}

absl::StatusOr<FieldValues> DecodeFieldValues(const SecretBytes& plaintext) {
  const uint8_t* p = plaintext.data();
  const uint8_t* end = p + plaintext.size();
  if (plaintext.empty() || *p != kFormatVersion) {
    return absl::DataLossError(
        "credential record has an unknown format version");
  }
  ++p;
  FieldValues out;
  std::string previous;
  while (p < end) {
    uint64_t len = 0;
    if (!GetVarint(p, end, len) || len == 0 || len > kMaxLength ||
        len > static_cast<uint64_t>(end - p)) {
      return absl::DataLossError(
          "credential record has a malformed field name");
    }
    std::string name(reinterpret_cast<const char*>(p), len);
    p += len;
    if (!out.empty() && name <= previous) {
      return absl::DataLossError(
          "credential record has unsorted or repeated field names");
    }
    if (!GetVarint(p, end, len) || len > kMaxLength ||
        len > static_cast<uint64_t>(end - p)) {
      return absl::DataLossError(absl::StrCat(
          "credential record has a malformed value for field ", name));
    }
    out.emplace(name, SecretBytes(absl::string_view(
                          reinterpret_cast<const char*>(p), len)));
    p += len;
    previous = std::move(name);
  }
  return out;
}

std::string RecordAssociatedData(absl::string_view provider,
                                 absl::string_view profile, int64_t version) {
  std::string ad = "credbroker.credential.v1";
  ad.push_back('\0');
  absl::StrAppend(&ad, provider);
  ad.push_back('\0');
  absl::StrAppend(&ad, profile);
  ad.push_back('\0');
  absl::StrAppend(&ad, version);
  return ad;
}

}  // namespace credbroker
