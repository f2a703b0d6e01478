#include "broker/core/row_mac.h"

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace credbroker {
namespace {

// Fields in one unambiguous string: each is "<length>:" then its bytes, so
// that no two rows (of any kind, the kind being the first field) give the
// same input.
class Encoder {
 public:
  explicit Encoder(absl::string_view kind) { Add(kind); }
  Encoder& Add(absl::string_view field) {
    absl::StrAppend(&out_, field.size(), ":", field);
    return *this;
  }
  Encoder& Add(int64_t n) { return Add(absl::StrCat(n)); }
  Encoder& Add(absl::Time t) {
    if (t == absl::InfinitePast()) return Add("-inf");
    if (t == absl::InfiniteFuture()) return Add("+inf");
    return Add(absl::ToUnixMicros(t));
  }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

std::string IdOf(const RequestRecord& r) { return r.request_id; }
std::string IdOf(const GrantRecord& g) { return g.grant_id; }
std::string IdOf(const StandingRecord& s) { return s.id; }

// Removes the rows `macs` does not verify, adding an event for each.
template <typename Row>
void Drop(const RowMacs& macs, std::vector<Row>& rows, absl::string_view what,
          absl::string_view where, absl::Time now,
          std::vector<AuditRecord>& refused) {
  auto bad = std::remove_if(rows.begin(), rows.end(),
                            [&](const Row& row) { return !macs.Verify(row); });
  for (auto it = bad; it != rows.end(); ++it) {
    AuditRecord e;
    e.time = now;
    e.kind = "row.refused";
    e.role = "broker";
    e.peer = "credbrokerd";
    e.outcome = "DATA_LOSS";
    e.detail = absl::StrCat(
        what, " ", IdOf(*it), " in ", where,
        " was refused: its MAC does not verify, so it was written or edited "
        "behind the broker's back; it is not acted on");
    std::cerr << "credbrokerd: DATA_LOSS: " << e.detail << "\n";
    refused.push_back(std::move(e));
  }
  rows.erase(bad, rows.end());
}

}  // namespace

std::string RowMacs::Of(const RequestRecord& r) const {
  Encoder e("credbroker.row.request.v1");
  e.Add(r.request_id)
      .Add(r.session_key)
      .Add(r.need_id)
      .Add(r.provider)
      .Add(r.profile);
  e.Add(r.action).Add(static_cast<int64_t>(r.context.size()));
  for (const auto& [key, value] : r.context) e.Add(key).Add(value);
  e.Add(absl::ToInt64Microseconds(r.requested_ttl))
      .Add(r.agent_peer)
      .Add(int64_t{r.state});
  e.Add(static_cast<int64_t>(r.missing_fields.size()));
  for (const std::string& f : r.missing_fields) e.Add(f);
  e.Add(r.created_at)
      .Add(r.expires_at)
      .Add(r.decided_at)
      .Add(r.decision)
      .Add(r.grant_id);
  e.Add(r.binding_note);
  return sealer_->AuditMac(e.str());
}

std::string RowMacs::Of(const GrantRecord& g) const {
  Encoder e("credbroker.row.grant.v1");
  e.Add(g.grant_id)
      .Add(g.request_id)
      .Add(g.session_key)
      .Add(g.provider)
      .Add(g.profile);
  e.Add(g.action)
      .Add(g.credential_version)
      .Add(int64_t{g.scope})
      .Add(g.created_at);
  e.Add(g.expires_at).Add(g.ended_at).Add(g.end_reason);
  return sealer_->AuditMac(e.str());
}

std::string RowMacs::Of(const StandingRecord& s) const {
  Encoder e("credbroker.row.standing.v1");
  e.Add(s.id)
      .Add(s.provider)
      .Add(s.profile)
      .Add(s.action_pattern)
      .Add(s.created_at);
  e.Add(s.expires_at).Add(int64_t{s.revoked ? 1 : 0});
  return sealer_->AuditMac(e.str());
}

void RowMacs::Sign(FlowWrite& write) const {
  for (RequestRecord& r : write.requests) r.mac = Of(r);
  for (GrantRecord& g : write.grants) g.mac = Of(g);
  for (StandingRecord& s : write.standing) s.mac = Of(s);
}

std::vector<AuditRecord> RowMacs::DropUnverified(FlowWrite& rows,
                                                 absl::string_view where,
                                                 absl::Time now) const {
  std::vector<AuditRecord> refused;
  Drop(*this, rows.requests, "request", where, now, refused);
  Drop(*this, rows.grants, "grant", where, now, refused);
  Drop(*this, rows.standing, "standing approval", where, now, refused);
  return refused;
}

}  // namespace credbroker
