// RowMacs: a MAC under the data key over every field of each row that can
// release or decide something: requests with their decisions, grants,
// standing approvals. Anything that can write the database file, an agent
// running as the user among them, can add or edit rows while the broker is
// stopped; a row whose MAC does not verify is refused when loaded, never
// acted on. Thread-safe (stateless but for the key).
#ifndef CREDBROKER_BROKER_CORE_ROW_MAC_H_
#define CREDBROKER_BROKER_CORE_ROW_MAC_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/crypto/crypto.h"
#include "broker/store/store.h"

namespace credbroker {

class RowMacs {
 public:
  // `sealer` must outlive this object.
  explicit RowMacs(const Sealer* sealer) : sealer_(sealer) {}

  std::string Of(const RequestRecord& r) const;
  std::string Of(const GrantRecord& g) const;
  std::string Of(const StandingRecord& s) const;

  // Sets the MAC of every request, grant and standing approval in `write`.
  void Sign(FlowWrite& write) const;

  // Whether the row's MAC is the one its fields give (constant time).
  template <typename Row>
  bool Verify(const Row& row) const {
    return !row.mac.empty() && ConstantTimeEquals(row.mac, Of(row));
  }

  // Removes from `rows` the requests, grants and standing approvals whose
  // MAC does not verify. Returns a row.refused audit event (DATA_LOSS, at
  // `now`) for each, naming it and `where` it was found ("the store"); each
  // is also named on stderr.
  std::vector<AuditRecord> DropUnverified(FlowWrite& rows,
                                          absl::string_view where,
                                          absl::Time now) const;

 private:
  const Sealer* const sealer_;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CORE_ROW_MAC_H_
