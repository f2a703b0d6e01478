#include "broker/rpc/answer_cache.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace credbroker {

std::string AnswerCache::Key(char kind, absl::string_view provider,
                             absl::string_view profile, int64_t version) {
  const absl::string_view nul("\0", 1);
  return absl::StrCat(absl::string_view(&kind, 1), provider, nul, profile, nul,
                      version);
}

std::optional<grpc::Slice> AnswerCache::Find(const std::string& key,
                                             CredentialManager& credentials) {
  Entry found;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    found = it->second;
  }
  if (!credentials.StillHolds(found.life)) return std::nullopt;
  return std::move(found.bytes);
}

void AnswerCache::Keep(std::string key, const grpc::Slice& bytes,
                       const CredentialManager::AnswerLife& life) {
  if (!life.mark.has_value()) return;
  absl::MutexLock lock(&mu_);
  if (entries_.size() >= kMaxEntries) {
    // An eighth, the first in the map's order: a call that fills the cache
    // pays for 512 destructions, not for emptying it.
    size_t drop = kMaxEntries / 8;
    for (auto it = entries_.begin(); drop > 0 && it != entries_.end(); --drop)
      entries_.erase(it++);
  }
  entries_.insert_or_assign(std::move(key), Entry{life, bytes});
}

size_t AnswerCache::size() {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace credbroker
