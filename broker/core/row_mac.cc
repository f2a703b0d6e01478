#include "broker/core/row_mac.h"

#include <string>

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

}  // namespace credbroker
