#include <algorithm>
#include <iostream>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "broker/common/status_macros.h"
#include "broker/core/requests.h"
#include "broker/core/requests_internal.h"
#include "broker/crypto/crypto.h"
#include "common/errors.h"
#include "common/text.h"

namespace credbroker {

using requests_internal::kMaxAction;
using requests_internal::kMaxContextEntries;
using requests_internal::kMaxContextKey;
using requests_internal::kMaxContextValue;
using requests_internal::kMaxNeedId;
using requests_internal::MakeEvent;
using requests_internal::Usable;

namespace {

// A violation for `text` when a person could be misled by it in an
// approval prompt (see FindUnsafeText), or when it is required and blank.
void CheckShownText(std::string field, absl::string_view text, bool required,
                    std::vector<FieldViolation>& v) {
  if (std::optional<std::string> bad = FindUnsafeText(text)) {
    v.push_back(
        {std::move(field),
         absl::StrCat(
             "contains ", *bad,
             ": the approver reads this text, so send plain printable UTF-8")});
  } else if (required && !text.empty() &&
             absl::StripAsciiWhitespace(text).empty()) {
    v.push_back({std::move(field), "must not be blank"});
  }
}

absl::Status CheckNeed(const Need& need) {
  std::vector<FieldViolation> v;
  CheckShownText("need.need_id", need.need_id, true, v);
  CheckShownText("need.action", need.action, true, v);
  CheckShownText("need.profile", need.profile, false, v);
  if (need.need_id.empty() || need.need_id.size() > kMaxNeedId) {
    v.push_back({"need.need_id",
                 absl::StrCat("give a need id of 1 to ", kMaxNeedId,
                              " characters, unique within the session")});
  }
  if (need.action.empty() || need.action.size() > kMaxAction) {
    v.push_back({"need.action",
                 absl::StrCat("say in 1 to ", kMaxAction,
                              " characters what the credential is for, e.g. "
                              "\"deploy to AWS in us-east-1\"")});
  }
  if (need.context.size() > kMaxContextEntries) {
    v.push_back(
        {"need.context", absl::StrCat("at most ", kMaxContextEntries,
                                      " context entries are accepted")});
  }
  for (const auto& [k, val] : need.context) {
    const std::string field = absl::StrCat(
        "need.context.", EscapeForTerminal(k.substr(0, kMaxContextKey)));
    CheckShownText(field + " (key)", k, false, v);
    CheckShownText(field, val, false, v);
    if (k.empty() || k.size() > kMaxContextKey ||
        val.size() > kMaxContextValue) {
      v.push_back(
          {absl::StrCat("need.context.", k.substr(0, kMaxContextKey)),
           absl::StrCat("context keys are 1 to ", kMaxContextKey,
                        " characters and values at most ", kMaxContextValue)});
    }
  }
  if (need.requested_ttl < absl::ZeroDuration()) {
    v.push_back({"need.requested_ttl", "must not be negative"});
  }
  if (v.empty()) return absl::OkStatus();
  return InvalidArgumentWithViolations("the credential need is not valid", v);
}

// A new request of `caller` for `need`, open until `pending_timeout` from
// `now`.
RequestRecord NewRequest(const std::string& session_key, const Caller& caller,
                         const Need& need, const std::string& provider,
                         const ProfileChoice& choice, absl::Time now,
                         absl::Duration pending_timeout) {
  RequestRecord r;
  r.request_id = absl::StrCat("r-", RandomHex(10));
  r.session_key = session_key;
  r.need_id = need.need_id;
  r.provider = provider;
  r.profile = choice.profile;
  r.action = need.action;
  r.context = need.context;
  r.requested_ttl = need.requested_ttl;
  r.agent_peer = caller.peer;
  r.created_at = now;
  r.expires_at = now + pending_timeout;
  r.binding_note = choice.note;
  return r;
}

}  // namespace

const StandingRecord* RequestManager::MatchStanding(const RequestRecord& r,
                                                    absl::Time now) const {
  for (const StandingRecord& s : standing_) {
    if (!s.revoked && s.expires_at > now && s.provider == r.provider &&
        s.profile == r.profile && ActionMatches(s.action_pattern, r.action)) {
      return &s;
    }
  }
  return nullptr;
}

absl::StatusOr<NeedUpdate> RequestManager::SubmitNeed(
    const std::string& session_key, const Caller& caller, Need need) {
  CB_RETURN_IF_ERROR(CheckNeed(need));
  CB_ASSIGN_OR_RETURN(const Provider* provider,
                      credentials_->registry().Get(need.provider));
  CB_ASSIGN_OR_RETURN(
      ProfileChoice choice,
      credentials_->ChooseProfile(
          provider->spec().id, need.profile, ResourceFromContext(need.context),
          [this](absl::string_view p, absl::string_view resource) {
            return store_->GetBinding(p, resource);
          }));

  absl::MutexLock lock(&mu_);
  const auto key = std::make_pair(session_key, need.need_id);
  if (auto it = by_need_.find(key); it != by_need_.end()) {
    NeedUpdate u = UpdateOf(open_.at(it->second));
    NotifyAgent(session_key, u);
    return u;
  }
  if (auto it = decided_.find(key); it != decided_.end()) {
    NeedUpdate u = UpdateOf(it->second);
    if (u.grant.has_value()) HandOver(*it, caller, u);
    NotifyAgent(session_key, u);
    return u;
  }
  const int open_in_session =
      static_cast<int>(OpenInSession(session_key).size());
  if (open_in_session >= options_.max_open_per_session) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this agent session already has ", open_in_session,
        " needs waiting for a decision; wait for them or cancel some"));
  }

  const absl::Time now = clock_();
  RequestRecord r = NewRequest(session_key, caller, need, provider->spec().id,
                               choice, now, options_.pending_timeout);

  absl::StatusOr<CredentialSummary> stored =
      credentials_->Get(r.provider, r.profile, 0);
  bool usable = stored.ok() && Usable(stored->readiness);
  if (!stored.ok() && !absl::IsNotFound(stored.status()) &&
      !absl::IsDataLoss(stored.status())) {
    return stored.status();
  }

  // A SESSION approval or a standing approval grants without asking.
  std::string auto_detail;
  const Scope auto_scope =
      usable ? AutoScope(r, now, auto_detail) : Scope::kUnspecified;
  if (auto_scope != Scope::kUnspecified) {
    return GrantWithoutAsking(std::move(r), auto_scope, auto_detail, now,
                              caller);
  }
  return OpenRequest(std::move(r), usable, stored, provider->spec(), caller);
}

Scope RequestManager::AutoScope(const RequestRecord& r, absl::Time now,
                                std::string& detail) {
  Session& session = sessions_[r.session_key];
  auto approval = session.approvals.find({r.provider, r.profile});
  if (approval != session.approvals.end() && approval->second > now) {
    detail = "granted under this session's approval";
    return Scope::kSession;
  }
  if (const StandingRecord* s = MatchStanding(r, now)) {
    detail = absl::StrCat("granted under standing approval ", s->id);
    return Scope::kStanding;
  }
  return Scope::kUnspecified;
}

absl::StatusOr<NeedUpdate> RequestManager::GrantWithoutAsking(
    RequestRecord r, Scope auto_scope, const std::string& auto_detail,
    absl::Time now, const Caller& caller) {
  const std::string& session_key = r.session_key;
  Effects effects;
  absl::Duration ttl =
      auto_scope == Scope::kSession
          ? sessions_[session_key].approvals[{r.provider, r.profile}] - now
          : options_.once_ttl;
  std::string rotation_key;
  CB_ASSIGN_OR_RETURN(Grant grant, IssueGrant(r, auto_scope, ttl, now, caller,
                                              effects, rotation_key));
  r.state = static_cast<int>(RequestState::kGranted);
  r.decided_at = now;
  r.decision = auto_detail;
  r.grant_id = grant.record.grant_id;
  effects.write.requests.push_back(r);
  effects.write.grants.push_back(grant.record);
  effects.write.audit.push_back(
      Event("request.created", caller, &r, nullptr, "ok", ""));
  effects.write.audit.push_back(
      Event("grant.created", caller, &r, &grant.record, "ok",
            absl::StrCat(ScopeName(auto_scope), ", ", auto_detail, ", version ",
                         grant.record.credential_version)));
  CB_RETURN_IF_ERROR(Commit(effects));
  MarkRotationNotified(rotation_key);
  active_grants_[grant.record.grant_id] = grant.record;
  grant_agents_[grant.record.grant_id] = caller;
  decided_[{session_key, r.need_id}] = r;
  NeedUpdate u;
  u.need_id = r.need_id;
  u.request_id = r.request_id;
  u.state = RequestState::kGranted;
  u.grant = std::move(grant);
  u.message = auto_detail;
  NotifyAgent(session_key, u);
  Notify(effects);  // Watchers: a rotation-due event, if any.
  return u;
}

absl::StatusOr<NeedUpdate> RequestManager::OpenRequest(
    RequestRecord r, bool usable,
    const absl::StatusOr<CredentialSummary>& stored, const ProviderSpec& spec,
    const Caller& caller) {
  const std::string session_key = r.session_key;
  if (usable) {
    r.state = static_cast<int>(RequestState::kPendingApproval);
  } else {
    r.state = static_cast<int>(RequestState::kNeedsInput);
    r.missing_fields = stored.ok() && !stored->missing_fields.empty()
                           ? stored->missing_fields
                           : MissingFields(spec, FieldValues());
  }
  Effects effects;
  effects.write.requests.push_back(r);
  effects.write.audit.push_back(
      Event("request.created", caller, &r, nullptr, "ok",
            std::string(RequestStateName(static_cast<RequestState>(r.state)))));
  CB_RETURN_IF_ERROR(Commit(effects));
  by_need_[{session_key, r.need_id}] = r.request_id;
  AddOpen(r);
  request_agents_[r.request_id] = caller;
  Session& session = sessions_[session_key];
  if (session.caller.peer.empty()) session.caller = caller;
  session.Record(caller);
  effects.watch_events.push_back(
      MakeEvent(WatchEventKind::kAdded, ViewOf(r, stored)));
  NeedUpdate u = UpdateOf(r);
  effects.agent_updates.push_back({session_key, u});
  Notify(effects);
  return u;
}

absl::Status RequestManager::CancelNeed(const std::string& session_key,
                                        const std::string& need_id,
                                        const Caller& caller) {
  absl::MutexLock lock(&mu_);
  auto it = by_need_.find({session_key, need_id});
  if (it == by_need_.end()) {
    return absl::NotFoundError(
        absl::StrCat("need \"", need_id, "\" is not waiting for a decision"));
  }
  RequestRecord r = open_.at(it->second);
  Effects effects;
  Close(r, RequestState::kCancelled, "cancelled by the agent",
        "request.cancelled", caller, effects);
  CB_RETURN_IF_ERROR(Commit(effects));
  EraseOpen(r.request_id);
  request_agents_.erase(r.request_id);
  by_need_.erase(it);
  decided_[{session_key, need_id}] = r;
  effects.agent_updates.push_back({session_key, UpdateOf(r)});
  Notify(effects);
  return absl::OkStatus();
}

}  // namespace credbroker
