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

using requests_internal::CheckReason;
using requests_internal::kMaxAction;
using requests_internal::Usable;

namespace {

// NOT_FOUND for an unknown request; FAILED_PRECONDITION naming the decision
// of one that is no longer open.
absl::Status DecidedRequestError(const absl::StatusOr<RequestRecord>& stored,
                                 const std::string& request_id) {
  if (!stored.ok()) return stored.status();
  return absl::FailedPreconditionError(absl::StrCat(
      "request ", request_id, " was already decided: ", stored->decision));
}

// The notes that follow the form's fields: how OAuth and generated values
// work, and that a stored credential keeps what is left empty.
void AddFormNotes(const ProviderSpec& spec, bool has_stored, Form& form) {
  if (spec.oauth) {
    form.notes.push_back(
        "Netlify connects through its OAuth flow: the IDE opens Netlify's "
        "authorization page and stores the access token it returns.");
  }
  for (const FieldSpec& field : spec.fields) {
    if (field.generatable) {
      form.notes.push_back(absl::StrCat(
          field.label,
          ": leave it empty and ask the broker to generate a strong one "
          "(generate: \"",
          field.name,
          "\"): 32 random letters, digits and symbols from libsodium's "
          "generator, stored encrypted and released only with the grant."));
    }
  }
  if (has_stored) {
    form.notes.push_back(
        "A credential is stored: sensitive fields left empty keep their stored "
        "values.");
  }
}

// What an approval fills in for the fields the approver left empty (and
// no stored value holds): the need's context value for an optional field
// that is not secret ("region": the agent asked for it, the approver saw
// it), else the field's default. A required or sensitive field is never
// taken from the agent's context: the person enters it.
FieldValues FillIns(
    const ProviderSpec& spec,
    const std::vector<std::pair<std::string, std::string>>& context) {
  FieldValues out;
  for (const FieldSpec& field : spec.fields) {
    if (field.derived) continue;
    if (field.optional && !field.sensitive) {
      auto it = std::find_if(
          context.begin(), context.end(), [&field](const auto& kv) {
            return kv.first == field.name && !kv.second.empty();
          });
      if (it != context.end()) {
        out.emplace(field.name, SecretBytes(it->second));
        continue;
      }
    }
    if (!field.default_value.empty()) {
      out.emplace(field.name, SecretBytes(field.default_value));
    }
  }
  return out;
}

}  // namespace

std::string RequestManager::SelfApprovalReason(const RequestRecord& r,
                                               const Caller& caller) const {
  // The process that asked, the one attached to its session now (an agent
  // that re-attached from a new process) and every other process recorded
  // for the session.
  for (const Caller* agent : sessions_.AgentsOf(r.session_key, r.request_id)) {
    if (!agent->identified()) continue;
    if (options_.is_same_or_descendant(caller.pid, *agent)) {
      return absl::StrCat(
          "the caller is the requesting agent's own process or runs under it (",
          caller.peer,
          "); decide from the IDE or a terminal the agent did not start");
    }
    // A command run beside the agent (`agent & credctl approve`) is no
    // descendant of it, but shares its terminal session or process group.
    // Not so for a process the agent runs under: an IDE's extension host
    // shares both with the agent it started (an MCP server, say), and
    // approving there is the point of the IDE.
    // (The process tree is walked only when one of them is shared.)
    const bool same_session =
        caller.session_id != 0 && caller.session_id == agent->session_id;
    const bool same_group = caller.process_group != 0 &&
                            caller.process_group == agent->process_group;
    if ((same_session || same_group) &&
        !options_.is_same_or_descendant(agent->pid, caller)) {
      return same_session
                 ? absl::StrCat("the caller runs in the agent's session (sid ",
                                caller.session_id, ", ", caller.peer,
                                "); decide from the IDE or another terminal")
                 : absl::StrCat(
                       "the caller runs in the agent's process group (",
                       caller.process_group, ", ", caller.peer,
                       "); decide from the IDE or another terminal");
    }
  }
  return "";
}

absl::Status RequestManager::CheckNotSelfApproval(const RequestRecord& r,
                                                  const Caller& caller,
                                                  absl::string_view what) {
  if (!options_.is_same_or_descendant) return absl::OkStatus();
  std::string refusal;
  if (!caller.identified() && !caller.client_certificate) {
    // Not knowing who calls is not "someone else".
    refusal = absl::StrCat("the broker cannot tell which process is calling (",
                           caller.peer,
                           "), so it cannot tell it from the agent; decide "
                           "over the Unix socket, or over TCP "
                           "with a client certificate (--tls_client_ca)");
  } else if (caller.identified()) {
    refusal = SelfApprovalReason(r, caller);
  }
  if (refusal.empty()) return absl::OkStatus();
  Effects refused;
  refused.write.audit.push_back(Event(
      absl::StrCat("request.", what, "_refused"), caller, &r, nullptr,
      "PERMISSION_DENIED", absl::StrCat("self-approval check: ", refusal)));
  Commit(refused).IgnoreError();
  return absl::PermissionDeniedError(absl::StrCat(
      "refusing to ", what, " request ", r.request_id, ": ", refusal));
}

absl::Status RequestManager::CheckMayDecide(const std::string& request_id,
                                            const Caller& caller) {
  absl::MutexLock lock(&mu_);
  auto it = open_.find(request_id);
  if (it == open_.end()) return absl::OkStatus();
  return CheckNotSelfApproval(it->second, caller, "approve");
}

absl::StatusOr<Form> RequestManager::GetForm(const std::string& request_id,
                                             const std::string& provider_in,
                                             const std::string& profile_in) {
  Form form;
  std::string provider_id = provider_in;
  std::string profile = profile_in;
  if (!request_id.empty()) {
    absl::MutexLock lock(&mu_);
    auto it = open_.find(request_id);
    if (it != open_.end()) {
      form.request = ViewOf(it->second);
    } else {
      absl::StatusOr<RequestRecord> stored = store_->GetRequest(request_id);
      if (!stored.ok()) return stored.status();
      form.request = ViewOf(*stored);
    }
    provider_id = form.request->record.provider;
    profile = form.request->record.profile;
  }
  if (form.request.has_value()) {
    Readinesses read;
    AddReadiness(*form.request, read);
  } else if (provider_id.empty()) {
    return InvalidArgumentWithViolations(
        "say which form",
        {{"request_id", "give a request id, or a provider (and profile)"}});
  }
  CB_ASSIGN_OR_RETURN(const Provider* provider,
                      credentials_->registry().Get(provider_id));
  CB_ASSIGN_OR_RETURN(
      profile, credentials_->ResolveProfile(provider->spec().id, profile));
  form.provider = &provider->spec();
  if (form.request.has_value() && !form.request->record.binding_note.empty()) {
    form.notes.push_back(form.request->record.binding_note);
  }
  form.profile = profile;
  FieldValues stored;
  absl::StatusOr<CredentialManager::StoredValues> values =
      credentials_->GetValues(provider->spec().id, profile, 0);
  if (values.ok()) {
    stored = std::move(values->values);
  } else if (!absl::IsNotFound(values.status())) {
    return values.status();
  }
  for (const FieldSpec& spec : provider->spec().fields) {
    FormField f;
    f.spec = spec;
    auto it = stored.find(spec.name);
    if (it != stored.end() && !it->second.empty()) {
      f.is_set = true;
      if (!spec.sensitive) f.current_value = std::string(it->second.Reveal());
    }
    form.fields.push_back(std::move(f));
  }
  AddFormNotes(provider->spec(), !stored.empty(), form);
  return form;
}

absl::StatusOr<ApproveResult> RequestManager::Approve(ApproveInput input,
                                                      const Caller& caller) {
  Effects effects;
  ApproveResult result;
  WatcherRegistry::Ticket ticket;
  {
    absl::MutexLock lock(&mu_);
    // Validate.
    CB_ASSIGN_OR_RETURN(RequestRecord r, OpenToDecide(input.request_id));
    CB_RETURN_IF_ERROR(CheckNotSelfApproval(r, caller, "approve"));
    CB_ASSIGN_OR_RETURN(absl::Duration ttl, ApproveTtl(input));
    std::string pattern =
        input.action_pattern.empty() ? r.action : input.action_pattern;
    if (pattern.size() > kMaxAction) {
      return InvalidArgumentWithViolations(
          "action pattern too long",
          {{"action_pattern",
            absl::StrCat("at most ", kMaxAction, " characters")}});
    }
    // Plan: the values entered become a version written with the decision.
    std::optional<CredentialManager::StoredValues> entered;
    CB_RETURN_IF_ERROR(PutOrCheckValues(input, r, caller, effects, entered));
    // Commit.
    CB_ASSIGN_OR_RETURN(
        result, GrantApproved(std::move(r), input.scope, ttl, pattern, caller,
                              effects, std::move(entered)));
    // Notify: the agent under the lock, the watchers after it.
    TellAgents(effects);
    ticket = watchers_.Reserve();
  }
  Publish(ticket, std::move(effects.watch_events));
  return result;
}

absl::StatusOr<RequestRecord> RequestManager::OpenToDecide(
    const std::string& request_id) const {
  auto it = open_.find(request_id);
  if (it == open_.end()) {
    return DecidedRequestError(store_->GetRequest(request_id), request_id);
  }
  const RequestRecord& r = it->second;
  if (clock_() >= r.expires_at) {
    // Expired (maybe while the broker was down) but not yet swept by Tick.
    return absl::FailedPreconditionError(
        absl::StrCat("request ", r.request_id, " expired at ",
                     absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", r.expires_at,
                                      absl::UTCTimeZone()),
                     "; the agent must ask again"));
  }
  return r;
}

// Defaults input.scope and the grant's ttl, and checks the ttl's bounds.
absl::StatusOr<absl::Duration> RequestManager::ApproveTtl(
    ApproveInput& input) const {
  if (input.scope == Scope::kUnspecified) input.scope = Scope::kOnce;
  absl::Duration ttl = input.ttl;
  if (ttl < absl::ZeroDuration()) {
    return InvalidArgumentWithViolations("invalid ttl",
                                         {{"ttl", "must not be negative"}});
  }
  if (ttl == absl::ZeroDuration()) {
    ttl = input.scope == Scope::kOnce      ? options_.once_ttl
          : input.scope == Scope::kSession ? options_.session_ttl
                                           : options_.standing_ttl;
  }
  if (input.scope == Scope::kStanding && ttl > options_.max_standing_ttl) {
    return InvalidArgumentWithViolations(
        "standing approval too long",
        {{"ttl", absl::StrCat("a standing approval lasts at most ",
                              absl::FormatDuration(options_.max_standing_ttl),
                              " (90 days)")}});
  }
  if (input.scope != Scope::kStanding && ttl > options_.max_grant_ttl) {
    return InvalidArgumentWithViolations(
        "grant too long",
        {{"ttl", absl::StrCat("a grant lasts at most ",
                              absl::FormatDuration(options_.max_grant_ttl))}});
  }
  return ttl;
}

// Adds to `effects` the new version made of the values the approver
// entered (or generated), with its audit event, and sets `entered` to what
// it holds: the version is written in the decision's transaction. Without
// values, checks that a ready credential is stored already.
absl::Status RequestManager::PutOrCheckValues(
    ApproveInput& input, const RequestRecord& r, const Caller& caller,
    Effects& effects, std::optional<CredentialManager::StoredValues>& entered) {
  if (!input.values.empty() || !input.generate.empty()) {
    PutCredentialInput put;
    put.provider = r.provider;
    put.profile = r.profile;
    put.values = std::move(input.values);
    put.generate = input.generate;
    put.keep_existing = true;
    put.fill_in =
        FillIns(credentials_->registry().Find(r.provider)->spec(), r.context);
    absl::StatusOr<CredentialManager::PreparedVersion> version =
        credentials_->PrepareVersion(std::move(put));
    if (!version.ok()) return version.status();  // The request stays pending.
    const CredentialRecord& record = version->record;
    effects.write.audit.push_back(
        Event("credential.put", caller, &r, nullptr, "ok",
              absl::StrCat("version ", record.version, ", fingerprint ",
                           record.fingerprint)));
    entered.emplace();
    entered->profile = record.profile;
    entered->version = record.version;
    entered->fingerprint = record.fingerprint;
    entered->values = std::move(version->values);  // A new version: ready.
    effects.write.credential = std::move(version->record);
  } else {
    absl::StatusOr<CredentialSummary> current =
        credentials_->Get(r.provider, r.profile, 0);
    if (absl::IsNotFound(current.status()) ||
        (current.ok() && !Usable(current->readiness))) {
      std::vector<std::string> missing =
          current.ok()
              ? current->missing_fields
              : MissingFields(credentials_->registry().Find(r.provider)->spec(),
                              FieldValues());
      return absl::FailedPreconditionError(absl::StrCat(
          "no ready ", r.provider, "/", r.profile,
          " credential is stored: approve with the values",
          missing.empty()
              ? ""
              : absl::StrCat(" (", absl::StrJoin(missing, ", "), ")")));
    }
    if (!current.ok()) return current.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<ApproveResult> RequestManager::GrantApproved(
    RequestRecord r, Scope scope, absl::Duration ttl,
    const std::string& pattern, const Caller& caller, Effects& effects,
    std::optional<CredentialManager::StoredValues> entered) {
  absl::Time now = clock_();
  std::string rotation_key;
  CB_ASSIGN_OR_RETURN(
      Grant grant, IssueGrant(r, scope, ttl, now, caller, effects, rotation_key,
                              std::move(entered)));
  ApproveResult result;
  result.grant_id = grant.record.grant_id;
  std::string decision = absl::StrCat("approved (", ScopeName(scope), ")");
  if (scope == Scope::kStanding) {
    result.standing_id = AddStanding(r, pattern, now, ttl, caller, effects);
    // The standing rule outlives this grant; the grant itself is one-off.
    grant.record.expires_at =
        std::min(grant.record.expires_at, now + options_.once_ttl);
  }
  r.grant_id = grant.record.grant_id;
  r.missing_fields.clear();  // Granted: nothing is missing any more.
  Close(r, RequestState::kGranted, decision, "request.approved", caller,
        effects);
  effects.write.grants.push_back(grant.record);
  effects.write.audit.push_back(Event(
      "grant.created", caller, &r, &grant.record, "ok",
      absl::StrCat(ScopeName(scope), ", version ",
                   grant.record.credential_version, ", expires ",
                   absl::FormatTime(absl::RFC3339_sec, grant.record.expires_at,
                                    absl::UTCTimeZone()))));
  // Fail closed: without its durable decision, its new credential version
  // (if any) and audit events, nothing is released or stored and the
  // request stays pending. ABORTED: another version was stored meanwhile.
  absl::Status committed = Commit(effects);
  if (!committed.ok()) {
    return absl::Status(
        absl::IsAborted(committed) ? absl::StatusCode::kAborted
                                   : absl::StatusCode::kUnavailable,
        absl::StrCat("the decision could not be recorded, so nothing was "
                     "released; the request is still pending: ",
                     committed.message()));
  }
  MarkRotationNotified(rotation_key);
  RecordApproval(r, std::move(grant), scope, decision, effects);
  return result;
}

std::string RequestManager::AddStanding(const RequestRecord& r,
                                        const std::string& pattern,
                                        absl::Time now, absl::Duration ttl,
                                        const Caller& caller,
                                        Effects& effects) {
  StandingRecord s;
  s.id = absl::StrCat("s-", RandomHex(8));
  s.provider = r.provider;
  s.profile = r.profile;
  s.action_pattern = pattern;
  s.created_at = now;
  s.expires_at = now + ttl;
  effects.write.standing.push_back(s);
  effects.write.audit.push_back(
      Event("standing.created", caller, &r, nullptr, "ok",
            absl::StrCat(s.id, " for \"", pattern, "\" until ",
                         absl::FormatTime(absl::RFC3339_sec, s.expires_at,
                                          absl::UTCTimeZone()))));
  return s.id;
}

void RequestManager::RecordApproval(const RequestRecord& r, Grant grant,
                                    Scope scope, const std::string& decision,
                                    Effects& effects) {
  EraseOpen(r.request_id);
  by_need_.erase({r.session_key, r.need_id});
  decided_[{r.session_key, r.need_id}] = r;
  active_grants_[grant.record.grant_id] = grant.record;
  sessions_.ForgetRequest(r.request_id);
  // The values reach the process attached to the session now; with none
  // attached, the first process of the session to ask again gets them.
  sessions_.HandToAttached(grant.record.grant_id, r.session_key);
  if (!effects.write.standing.empty())
    standing_.push_back(effects.write.standing[0]);
  if (scope == Scope::kSession) {
    sessions_.Approve(r.session_key, r.provider, r.profile,
                      grant.record.expires_at);
  }
  NeedUpdate u;
  u.need_id = r.need_id;
  u.request_id = r.request_id;
  u.state = RequestState::kGranted;
  u.message = decision;
  u.grant = std::move(grant);
  effects.agent_updates.push_back({r.session_key, std::move(u)});
}

absl::Status RequestManager::Deny(const std::string& request_id,
                                  const std::string& reason,
                                  const Caller& caller) {
  CB_RETURN_IF_ERROR(CheckReason(reason));
  Effects effects;
  WatcherRegistry::Ticket ticket;
  {
    absl::MutexLock lock(&mu_);
    auto it = open_.find(request_id);
    if (it == open_.end()) {
      return DecidedRequestError(store_->GetRequest(request_id), request_id);
    }
    RequestRecord r = it->second;
    CB_RETURN_IF_ERROR(CheckNotSelfApproval(r, caller, "deny"));
    Close(r, RequestState::kDenied,
          reason.empty() ? std::string("denied")
                         : absl::StrCat("denied: ", reason),
          "request.denied", caller, effects);
    CB_RETURN_IF_ERROR(Commit(effects));
    EraseOpen(r.request_id);
    by_need_.erase({r.session_key, r.need_id});
    sessions_.ForgetRequest(r.request_id);
    decided_[{r.session_key, r.need_id}] = r;
    NeedUpdate u = UpdateOf(r);
    u.reason = reason.empty() ? "denied by the user" : reason;
    effects.agent_updates.push_back({r.session_key, std::move(u)});
    TellAgents(effects);
    ticket = watchers_.Reserve();
  }
  Publish(ticket, std::move(effects.watch_events));
  return absl::OkStatus();
}

}  // namespace credbroker
