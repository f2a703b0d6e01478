// LatestIndex: the store's in-memory map of the latest credential versions.
// Internal to broker/store. Thread-safe.
#ifndef CREDBROKER_BROKER_STORE_LATEST_INDEX_H_
#define CREDBROKER_BROKER_STORE_LATEST_INDEX_H_

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "broker/store/store.h"

namespace credbroker {
namespace sqlite_internal {

// The broker's one cache of credential facts: the latest version of each
// provider/profile that was read or written since the store opened, as
// stored (sealed: no value is in the clear), so that reading a latest
// version (every GetCredential whose answer the RPC layer does not keep,
// every approval's check of what it releases) is a hash lookup, not a
// search of two B-trees through a read connection. It holds one entry per
// profile at most, the size of its row.
//
// Invalidation: an entry is replaced or dropped by the store's own commit
// that changes its profile, in the same call that commits (Committed, then
// the mark moves on; no other process can write the database,
// kExclusiveVfs), and a read from the database is offered only when no
// commit came between its mark and now.
class LatestIndex {
 public:
  using Mark = Store::ChangeMark;

  static std::string Key(absl::string_view provider,
                         absl::string_view profile) {
    return absl::StrCat(provider.size(), ":", provider, profile);
  }

  // A change a transaction made: the new latest version, or none (deleted).
  struct Change {
    std::string key;
    std::optional<CredentialRecord> latest;
  };

  // The entry for `key` when `mark` (the store's, now) is the one the index
  // is current for; else nullopt, and *may_offer says whether what the
  // caller then reads from the database may be offered (Offer).
  std::optional<CredentialRecord> Find(const std::string& key,
                                       const std::optional<Mark>& mark,
                                       bool* may_offer) const {
    *may_offer = false;
    if (!mark.has_value()) return std::nullopt;
    absl::ReaderMutexLock lock(&mu_);
    if (!current_ || mark_ != *mark) return std::nullopt;
    auto it = entries_.find(key);
    if (it != entries_.end()) return it->second;
    *may_offer = true;
    return std::nullopt;
  }

  // What a read of `key` found in the database, read while the store's mark
  // was `read_mark` and still is (`now`): nothing was committed in between,
  // so it is the latest version.
  void Offer(const std::string& key, const CredentialRecord& record,
             const Mark& read_mark, const std::optional<Mark>& now) {
    if (!now.has_value() || *now != read_mark) return;
    absl::MutexLock lock(&mu_);
    if (current_ && mark_ == read_mark) entries_.try_emplace(key, record);
  }

  // After the store's commit of `changes` (`committed`: it succeeded; else
  // the changed profiles are forgotten), with the store's mark after it.
  void Committed(std::vector<Change>& changes, bool committed,
                 const Mark& mark) {
    absl::MutexLock lock(&mu_);
    for (Change& c : changes) {
      if (committed && c.latest.has_value()) {
        entries_.insert_or_assign(c.key, *std::move(c.latest));
      } else {
        entries_.erase(c.key);
      }
    }
    current_ = true;
    mark_ = mark;
  }

  // Forgets everything: a commit whose outcome is unknown.
  void Clear() {
    absl::MutexLock lock(&mu_);
    entries_.clear();
    current_ = false;
  }

  size_t size() const {
    absl::ReaderMutexLock lock(&mu_);
    return entries_.size();
  }

 private:
  mutable absl::Mutex mu_;
  bool current_ ABSL_GUARDED_BY(mu_) = false;
  Mark mark_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, CredentialRecord> entries_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace sqlite_internal
}  // namespace credbroker

#endif  // CREDBROKER_BROKER_STORE_LATEST_INDEX_H_
