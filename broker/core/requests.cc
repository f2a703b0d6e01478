#include "broker/core/requests.h"

#include <algorithm>
#include <iostream>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "broker/common/status_macros.h"
#include "broker/core/requests_internal.h"
#include "common/errors.h"
#include "common/text.h"

namespace credbroker {
namespace requests_internal {

absl::Status CheckReason(const std::string& reason) {
  if (reason.size() <= kMaxReason) return absl::OkStatus();
  return InvalidArgumentWithViolations(
      "reason too long",
      {{"reason", absl::StrCat("at most ", kMaxReason, " characters")}});
}

WatchEvent MakeEvent(WatchEventKind kind, RequestView request) {
  WatchEvent e;
  e.kind = kind;
  e.request = std::move(request);
  return e;
}

}  // namespace requests_internal

using requests_internal::GrantEnded;
using requests_internal::MakeEvent;

namespace {

bool GlobMatch(absl::string_view p, absl::string_view s) {
  size_t pi = 0, si = 0, star = absl::string_view::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && (p[pi] == '?' || absl::ascii_tolower(p[pi]) ==
                                              absl::ascii_tolower(s[si]))) {
      ++pi;
      ++si;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = si;
    } else if (star != absl::string_view::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

}  // namespace

std::string ResourceFromContext(
    const std::vector<std::pair<std::string, std::string>>& context) {
  for (const char* key : kResourceContextKeys) {
    for (const auto& [k, v] : context) {
      if (k == key && !v.empty()) return v;
    }
  }
  return "";
}

bool ActionMatches(absl::string_view pattern, absl::string_view action) {
  return GlobMatch(pattern, action);
}

absl::string_view RequestStateName(RequestState s) {
  switch (s) {
    case RequestState::kPendingApproval:
      return "PENDING_APPROVAL";
    case RequestState::kNeedsInput:
      return "NEEDS_INPUT";
    case RequestState::kGranted:
      return "GRANTED";
    case RequestState::kDenied:
      return "DENIED";
    case RequestState::kExpired:
      return "EXPIRED";
    case RequestState::kCancelled:
      return "CANCELLED";
    case RequestState::kRevoked:
      return "REVOKED";
    case RequestState::kUnspecified:
      break;
  }
  return "UNSPECIFIED";
}

bool IsTerminal(RequestState s) {
  return s != RequestState::kPendingApproval &&
         s != RequestState::kNeedsInput && s != RequestState::kUnspecified;
}

absl::string_view ScopeName(Scope s) {
  switch (s) {
    case Scope::kOnce:
      return "once";
    case Scope::kSession:
      return "session";
    case Scope::kStanding:
      return "standing";
    case Scope::kUnspecified:
      break;
  }
  return "unspecified";
}

RequestManager::RequestManager(Store* store, CredentialManager* credentials,
                               AuditLog* audit, const Sealer* sealer,
                               Clock clock, RequestOptions options)
    : store_(store),
      credentials_(credentials),
      audit_(audit),
      rows_(sealer),
      clock_(std::move(clock)),
      options_(options),
      sessions_(options.grace_period) {}

AuditRecord RequestManager::Event(absl::string_view kind, const Caller& caller,
                                  const RequestRecord* request,
                                  const GrantRecord* grant,
                                  absl::string_view outcome,
                                  std::string detail) const {
  AuditRecord e = EventBy(kind, caller, outcome, std::move(detail));
  e.time = clock_();
  if (request != nullptr) {
    e.provider = request->provider;
    e.profile = request->profile;
    e.request_id = request->request_id;
    e.action = request->action;
  }
  if (grant != nullptr) {
    e.provider = grant->provider;
    e.profile = grant->profile;
    e.grant_id = grant->grant_id;
    if (e.request_id.empty()) e.request_id = grant->request_id;
    if (e.action.empty()) e.action = grant->action;
  }
  return e;
}

absl::Status RequestManager::Commit(Effects& effects) {
  for (AuditRecord& e : effects.write.audit) e.time = clock_();
  rows_.Sign(effects.write);
  return store_->WriteFlow(effects.write, audit_->HashFn());
}

NeedUpdate RequestManager::UpdateOf(const RequestRecord& r) {
  NeedUpdate u;
  u.need_id = r.need_id;
  u.request_id = r.request_id;
  u.state = static_cast<RequestState>(r.state);
  u.missing_fields = r.missing_fields;
  switch (u.state) {
    case RequestState::kPendingApproval:
      u.message = absl::StrCat("waiting for approval of \"", r.action, "\"");
      break;
    case RequestState::kNeedsInput:
      u.message =
          absl::StrCat("waiting for the user to enter the ", r.provider,
                       " credential: ", absl::StrJoin(r.missing_fields, ", "));
      break;
    case RequestState::kGranted: {
      auto g = active_grants_.find(r.grant_id);
      if (g == active_grants_.end() || GrantEnded(g->second, clock_())) {
        // An ended or expired grant is never handed out again.
        u.state = RequestState::kExpired;
        u.reason = "the grant for this need has ended; send a new need";
        break;
      }
      absl::StatusOr<CredentialManager::StoredValues> values =
          credentials_->GetValues(g->second.provider, g->second.profile,
                                  g->second.credential_version);
      if (!values.ok()) {
        u.state = RequestState::kCancelled;
        u.reason =
            absl::StrCat("the granted credential is no longer available: ",
                         values.status().message());
        break;
      }
      u.grant = Grant{g->second, std::move(values->values)};
      u.message = r.decision;
      break;
    }
    default:
      u.reason = r.decision;
      break;
  }
  return u;
}

void RequestManager::Close(RequestRecord& r, RequestState state,
                           std::string decision, absl::string_view audit_kind,
                           const Caller& caller, Effects& effects) {
  r.state = static_cast<int>(state);
  r.decided_at = clock_();
  r.decision = std::move(decision);
  effects.write.requests.push_back(r);
  effects.write.audit.push_back(
      Event(audit_kind, caller, &r, nullptr, "ok", r.decision));
  WatchEventKind kind =
      state == RequestState::kExpired     ? WatchEventKind::kExpired
      : state == RequestState::kCancelled ? WatchEventKind::kCancelled
                                          : WatchEventKind::kResolved;
  effects.watch_events.push_back(MakeEvent(kind, ViewOf(r)));
}

void RequestManager::AddOpen(RequestRecord r) {
  open_by_expiry_.insert({r.expires_at, r.request_id});
  std::string id = r.request_id;
  open_[std::move(id)] = std::move(r);
}

void RequestManager::EraseOpen(const std::string& request_id) {
  auto it = open_.find(request_id);
  if (it == open_.end()) return;
  open_by_expiry_.erase({it->second.expires_at, request_id});
  open_.erase(it);
}

}  // namespace credbroker
