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
  // Validate, and read what the decision needs from the store, unlocked.
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
  const absl::StatusOr<CredentialSummary> stored =
      credentials_->Get(provider->spec().id, choice.profile, 0);
  if (!stored.ok() && !absl::IsNotFound(stored.status()) &&
      !absl::IsDataLoss(stored.status())) {
    return stored.status();
  }
  const bool usable = stored.ok() && Usable(stored->readiness);

  Effects effects;
  NeedUpdate u;
  WatcherRegistry::Ticket ticket;
  {
    absl::MutexLock lock(&mu_);
    // Plan: the answer already given, or a new request granted at once or
    // opened for the user.
    if (std::optional<NeedUpdate> again =
            Resent(session_key, need.need_id, caller)) {
      sessions_.Tell(session_key, *again);
      return *again;
    }
    CB_RETURN_IF_ERROR(CheckRoom(session_key));
    const absl::Time now = clock_();
    RequestRecord r = NewRequest(session_key, caller, need, provider->spec().id,
                                 choice, now, options_.pending_timeout);
    std::string auto_detail;
    const Scope auto_scope =
        usable ? AutoScope(r, now, auto_detail) : Scope::kUnspecified;
    // Commit.
    CB_ASSIGN_OR_RETURN(
        u, auto_scope != Scope::kUnspecified
               ? GrantWithoutAsking(std::move(r), auto_scope, auto_detail, now,
                                    caller, effects)
               : OpenRequest(std::move(r), usable, stored, provider->spec(),
                             caller, effects));
    // Notify: the agent in order with its later updates, then the watchers.
    sessions_.Tell(session_key, u);
    ticket = watchers_.Reserve();
  }
  Readinesses known;
  known[{provider->spec().id, choice.profile}] =
      stored.ok() ? std::optional<Readiness>(stored->readiness) : std::nullopt;
  Publish(ticket, std::move(effects.watch_events), std::move(known));
  return u;
}

std::optional<NeedUpdate> RequestManager::Resent(const std::string& session_key,
                                                 const std::string& need_id,
                                                 const Caller& caller) {
  const auto key = std::make_pair(session_key, need_id);
  if (auto it = by_need_.find(key); it != by_need_.end()) {
    return UpdateOf(open_.at(it->second));
  }
  if (auto it = decided_.find(key); it != decided_.end()) {
    NeedUpdate u = UpdateOf(it->second);
    if (u.grant.has_value()) HandOver(*it, caller, u);
    return u;
  }
  return std::nullopt;
}

absl::Status RequestManager::CheckRoom(const std::string& session_key) const {
  const int open_in_session =
      static_cast<int>(OpenInSession(session_key).size());
  if (open_in_session < options_.max_open_per_session) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "this agent session already has ", open_in_session,
      " needs waiting for a decision; wait for them or cancel some"));
}

Scope RequestManager::AutoScope(const RequestRecord& r, absl::Time now,
                                std::string& detail) {
  std::optional<absl::Time> until =
      sessions_.ApprovedUntil(r.session_key, r.provider, r.profile);
  if (until.has_value() && *until > now) {
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
    absl::Time now, const Caller& caller, Effects& effects) {
  const absl::Duration ttl =
      auto_scope == Scope::kSession
          ? *sessions_.ApprovedUntil(r.session_key, r.provider, r.profile) - now
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
  sessions_.SetHolder(grant.record.grant_id, caller);
  decided_[{r.session_key, r.need_id}] = r;
  NeedUpdate u;
  u.need_id = r.need_id;
  u.request_id = r.request_id;
  u.state = RequestState::kGranted;
  u.grant = std::move(grant);
  u.message = auto_detail;
  return u;  // Watchers: a rotation-due event, if any, is in `effects`.
}

absl::StatusOr<NeedUpdate> RequestManager::OpenRequest(
    RequestRecord r, bool usable,
    const absl::StatusOr<CredentialSummary>& stored, const ProviderSpec& spec,
    const Caller& caller, Effects& effects) {
  if (usable) {
    r.state = static_cast<int>(RequestState::kPendingApproval);
  } else {
    r.state = static_cast<int>(RequestState::kNeedsInput);
    r.missing_fields = stored.ok() && !stored->missing_fields.empty()
                           ? stored->missing_fields
                           : MissingFields(spec, FieldValues());
  }
  effects.write.requests.push_back(r);
  effects.write.audit.push_back(
      Event("request.created", caller, &r, nullptr, "ok",
            std::string(RequestStateName(static_cast<RequestState>(r.state)))));
  CB_RETURN_IF_ERROR(Commit(effects));
  by_need_[{r.session_key, r.need_id}] = r.request_id;
  AddOpen(r);
  sessions_.RecordAsker(r.session_key, r.request_id, caller);
  effects.watch_events.push_back(MakeEvent(WatchEventKind::kAdded, ViewOf(r)));
  return UpdateOf(r);
}

absl::Status RequestManager::CancelNeed(const std::string& session_key,
                                        const std::string& need_id,
                                        const Caller& caller) {
  Effects effects;
  WatcherRegistry::Ticket ticket;
  {
    absl::MutexLock lock(&mu_);
    auto it = by_need_.find({session_key, need_id});
    if (it == by_need_.end()) {
      return absl::NotFoundError(
          absl::StrCat("need \"", need_id, "\" is not waiting for a decision"));
    }
    RequestRecord r = open_.at(it->second);
    Close(r, RequestState::kCancelled, "cancelled by the agent",
          "request.cancelled", caller, effects);
    CB_RETURN_IF_ERROR(Commit(effects));
    EraseOpen(r.request_id);
    sessions_.ForgetRequest(r.request_id);
    by_need_.erase(it);
    decided_[{session_key, need_id}] = r;
    effects.agent_updates.push_back({session_key, UpdateOf(r)});
    TellAgents(effects);
    ticket = watchers_.Reserve();
  }
  Publish(ticket, std::move(effects.watch_events));
  return absl::OkStatus();
}

}  // namespace credbroker
