#include "broker/core/audit.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "broker/common/status_macros.h"
#include "broker/crypto/crypto.h"
#include "common/errors.h"

namespace credbroker {
namespace {

// Length-prefixed, so that no two different events encode alike.
void Put(std::string& out, absl::string_view field) {
  absl::StrAppend(&out, field.size(), ":", field, ";");
}

}  // namespace

int64_t AuditRecordNumber(absl::string_view detail) {
  size_t at = detail.rfind("(record ");
  if (at == absl::string_view::npos) return -1;
  absl::string_view rest = detail.substr(at + 8);
  size_t end = rest.find(')');
  int64_t n = -1;
  if (end == absl::string_view::npos ||
      !absl::SimpleAtoi(rest.substr(0, end), &n))
    return -1;
  return n;
}

AuditRecord EventBy(absl::string_view kind, const Caller& caller,
                    absl::string_view outcome, std::string detail) {
  AuditRecord e;
  e.kind = std::string(kind);
  e.role = caller.role;
  e.peer = caller.peer;
  e.outcome = std::string(outcome);
  e.detail = std::move(detail);
  return e;
}

AuditLog::AuditLog(Store* store, const Sealer* sealer, Clock clock)
    : store_(store), sealer_(sealer), clock_(std::move(clock)) {}

std::string AuditLog::HashOf(const AuditRecord& e) const {
  std::string canonical = "credbroker.audit.v1;";
  Put(canonical, absl::StrCat(e.sequence));
  Put(canonical, absl::StrCat(absl::ToUnixMicros(e.time)));
  for (const std::string* f :
       {&e.kind, &e.role, &e.peer, &e.provider, &e.profile, &e.request_id,
        &e.grant_id, &e.action, &e.outcome, &e.detail, &e.prev_hash}) {
    Put(canonical, *f);
  }
  return sealer_->AuditMac(canonical);
}

absl::Status AuditLog::Record(AuditRecord event) {
  return store_->AppendAudit(Stamped(std::move(event)), HashFn()).status();
}

AuditRecord AuditLog::Stamped(AuditRecord event) const {
  event.time = clock_();
  return event;
}

Store::AuditHashFn AuditLog::HashFn() const {
  return [this](const AuditRecord& e) { return HashOf(e); };
}

absl::StatusOr<AuditPage> AuditLog::List(AuditQuery query, int page_size,
                                         absl::string_view page_token) {
  if (page_size < 0) {
    return InvalidArgumentWithViolations(
        "invalid page_size", {{"page_size", "give 0 (default 100) to 1000"}});
  }
  if (!page_token.empty() &&
      (!absl::SimpleAtoi(page_token, &query.after_sequence) ||
       query.after_sequence < 0)) {
    return InvalidArgumentWithViolations(
        "page_token is not valid",
        {{"page_token",
          "pass the next_page_token of the previous response "
          "unchanged, or leave it empty for the first page"}});
  }
  if (query.since > query.until) {
    return InvalidArgumentWithViolations(
        "empty time range", {{"until", "must not be before `since`"}});
  }
  int limit = page_size == 0 ? 100 : std::min(page_size, 1000);
  query.limit = limit + 1;
  CB_ASSIGN_OR_RETURN(std::vector<AuditRecord> events,
                      store_->ListAudit(query));
  AuditPage page;
  if (events.size() > static_cast<size_t>(limit)) {
    events.resize(limit);
    page.next_page_token = absl::StrCat(events.back().sequence);
  }
  page.events = std::move(events);
  return page;
}

absl::Status AuditLog::Verify() {
  CB_ASSIGN_OR_RETURN(Verification v, VerifyChain());
  if (v.intact()) return absl::OkStatus();
  return absl::DataLossError(v.problem);
}

absl::StatusOr<AuditLog::Verification> AuditLog::VerifyChain() {
  AuditQuery query;
  query.limit = 1000;
  Verification v;
  int64_t expected_sequence = 1;
  std::string prev_hash;
  auto broken = [&](int64_t sequence, std::string problem) {
    v.broken_at_sequence = sequence;
    v.problem = std::move(problem);
    return v;
  };
  while (true) {
    CB_ASSIGN_OR_RETURN(std::vector<AuditRecord> events,
                        store_->ListAudit(query));
    if (events.empty()) return v;
    for (const AuditRecord& e : events) {
      if (e.sequence != expected_sequence) {
        return broken(
            expected_sequence,
            absl::StrCat("audit log broken: event ", expected_sequence,
                         " is missing (the next stored event is ", e.sequence,
                         ")"));
      }
      if (e.prev_hash != prev_hash) {
        return broken(e.sequence,
                      absl::StrCat("audit log broken at event ", e.sequence,
                                   ": it does not chain to the event before it "
                                   "(an event was removed, inserted or edited "
                                   "there)"));
      }
      if (HashOf(e) != e.hash) {
        return broken(e.sequence,
                      absl::StrCat("audit log broken at event ", e.sequence,
                                   ": its contents do not match its hash (the "
                                   "event was edited)"));
      }
      prev_hash = e.hash;
      ++expected_sequence;
      ++v.events_checked;
    }
    query.after_sequence = events.back().sequence;
  }
}

}  // namespace credbroker
