// AnswerCache: the serialized answers of GetCredential and of
// ValidateCredential of what is stored, kept by the RPC layer so that an
// unchanged answer is sent again without reading, summarizing or
// serializing it. Thread-safe.
#ifndef CREDBROKER_BROKER_RPC_ANSWER_CACHE_H_
#define CREDBROKER_BROKER_RPC_ANSWER_CACHE_H_

#include <grpcpp/support/slice.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "broker/core/credentials.h"

namespace credbroker {

// An entry is sent again only while CredentialManager::StillHolds the
// AnswerLife it was read with: the store has committed nothing since (every
// write, an approval's included, is one of its commits) and the clock is
// inside the span the answer holds for. At most kMaxEntries entries; a full
// cache drops an eighth of them.
class AnswerCache {
 public:
  static constexpr size_t kMaxEntries = 4096;

  // The key of a request: which answer (`kind`), and the provider, profile
  // and version exactly as asked (an empty profile is the default's).
  static std::string Key(char kind, absl::string_view provider,
                         absl::string_view profile, int64_t version);

  // The answer kept for `key`, while it still holds.
  std::optional<grpc::Slice> Find(const std::string& key,
                                  CredentialManager& credentials);
  // Keeps `bytes`, the answer read with `life`, for `key`.
  void Keep(std::string key, const grpc::Slice& bytes,
            const CredentialManager::AnswerLife& life);

  size_t size();

 private:
  struct Entry {
    CredentialManager::AnswerLife life;
    grpc::Slice bytes;
  };
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_ANSWER_CACHE_H_
