#include "common/secret.h"

#include <sodium.h>

#include <cstring>
#include <utility>

#include "common/locked_memory.h"

namespace credbroker {

SecretBytes::SecretBytes(absl::string_view value) {
  Assign(reinterpret_cast<const uint8_t*>(value.data()), value.size());
}

SecretBytes SecretBytes::TakeFrom(std::string& value) {
  SecretBytes s(value);
  WipeString(value);
  return s;
}

SecretBytes SecretBytes::Zeroed(size_t size) {
  SecretBytes s;
  if (size > 0) {
    s.data_ = static_cast<uint8_t*>(LockedAlloc(size));
    s.size_ = size;
    std::memset(s.data_, 0, size);
  }
  return s;
}

SecretBytes::SecretBytes(const SecretBytes& other) {
  Assign(other.data_, other.size_);
}

SecretBytes& SecretBytes::operator=(const SecretBytes& other) {
  if (this != &other) Assign(other.data_, other.size_);
  return *this;
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Clear();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SecretBytes::~SecretBytes() { Clear(); }

bool SecretBytes::Equals(const SecretBytes& other) const {
  if (size_ != other.size_) return false;
  if (size_ == 0) return true;
  return sodium_memcmp(data_, other.data_, size_) == 0;
}

void SecretBytes::Clear() {
  // LockedFree wipes the block.
  if (data_ != nullptr) LockedFree(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

void SecretBytes::Assign(const uint8_t* data, size_t size) {
  Clear();
  if (size == 0) return;
  data_ = static_cast<uint8_t*>(LockedAlloc(size));
  size_ = size;
  std::memcpy(data_, data, size);
}

void WipeString(std::string& s) {
  if (!s.empty()) sodium_memzero(&s[0], s.size());
  s.clear();
}

}  // namespace credbroker
