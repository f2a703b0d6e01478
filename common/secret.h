// SecretBytes holds a secret value (a key, a token, a password).
//
// The bytes live in memory that is locked against swapping where the system
// allows and wiped (sodium_memzero) when the value is destroyed or
// overwritten. There is no conversion to std::string or absl::AlphaNum and
// no operator<<, so a secret cannot reach a log line or a status message by
// accident; Reveal() is the one explicit way to read it. A SecretBytes is a
// value type: copies are deep and each copy is wiped on its own. Not
// thread-safe for concurrent mutation.
#ifndef CREDBROKER_COMMON_SECRET_H_
#define CREDBROKER_COMMON_SECRET_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/strings/string_view.h"

namespace credbroker {

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(absl::string_view value);
  // Takes the contents of `value` and wipes the std::string it came from.
  static SecretBytes TakeFrom(std::string& value);
  // `size` zero bytes, to be filled through mutable_data().
  static SecretBytes Zeroed(size_t size);

  SecretBytes(const SecretBytes& other);
  SecretBytes& operator=(const SecretBytes& other);
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  ~SecretBytes();

  // The one explicit way to read the value. The view is valid while this
  // object lives and is not modified.
  absl::string_view Reveal() const {
    return absl::string_view(reinterpret_cast<const char*>(data_), size_);
  }
  const uint8_t* data() const { return data_; }
  uint8_t* mutable_data() { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Constant-time comparison of contents.
  bool Equals(const SecretBytes& other) const;
  bool operator==(const SecretBytes& other) const { return Equals(other); }
  bool operator!=(const SecretBytes& other) const { return !Equals(other); }

  void Clear();

 private:
  void Assign(const uint8_t* data, size_t size);

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Field name -> value for one credential. Every value is held as a secret,
// sensitive or not, so that a whole credential is wiped in one place.
using FieldValues = std::map<std::string, SecretBytes>;

// Wipes a std::string that held secret bytes (e.g. a protobuf field).
void WipeString(std::string& s);

}  // namespace credbroker

#endif  // CREDBROKER_COMMON_SECRET_H_
