#include "broker/core/requests.h"

#include <algorithm>
#include <iostream>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "broker/common/errors.h"
#include "broker/common/status_macros.h"
#include "broker/common/text.h"
#include "broker/crypto/crypto.h"

namespace credbroker {
namespace {

constexpr size_t kMaxNeedId = 128;
constexpr size_t kMaxAction = 1024;
constexpr size_t kMaxContextEntries = 32;
constexpr size_t kMaxContextKey = 64;
constexpr size_t kMaxContextValue = 1024;
constexpr size_t kMaxReason = 1024;

// What a store answers when it cannot write at all: an I/O error, a
// read-only or unopenable file, a full disk.
bool RefusedWrite(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsFailedPrecondition(s) ||
         absl::IsResourceExhausted(s);
}

// Released, revoked or expired at `now`.
bool GrantEnded(const GrantRecord& g, absl::Time now) {
  return g.ended_at != absl::InfiniteFuture() || g.expires_at <= now;
}

constexpr char kSpillIdKey[] = "spill_id";

// The store's meta key that records the take-back of spill `id`.
std::string SpillTakenKey(absl::string_view id) { return absl::StrCat("spill_taken/", id); }
constexpr int kAll = std::numeric_limits<int>::max();

bool Usable(Readiness r) {
  return r == Readiness::kReady || r == Readiness::kRotationDue;
}

// A violation for `text` when a person could be misled by it in an
// approval prompt (see FindUnsafeText), or when it is required and blank.
void CheckShownText(std::string field, absl::string_view text, bool required,
                    std::vector<FieldViolation>& v) {
  if (std::optional<std::string> bad = FindUnsafeText(text)) {
    v.push_back({std::move(field),
                 absl::StrCat("contains ", *bad,
                              ": the approver reads this text, so send plain printable UTF-8")});
  } else if (required && !text.empty() && absl::StripAsciiWhitespace(text).empty()) {
    v.push_back({std::move(field), "must not be blank"});
  }
}

absl::Status CheckNeed(const Need& need) {
  std::vector<FieldViolation> v;
  CheckShownText("need.need_id", need.need_id, true, v);
  CheckShownText("need.action", need.action, true, v);
  CheckShownText("need.profile", need.profile, false, v);
  if (need.need_id.empty() || need.need_id.size() > kMaxNeedId) {
    v.push_back({"need.need_id", absl::StrCat("give a need id of 1 to ", kMaxNeedId,
                                              " characters, unique within the session")});
  }
  if (need.action.empty() || need.action.size() > kMaxAction) {
    v.push_back({"need.action",
                 absl::StrCat("say in 1 to ", kMaxAction,
                              " characters what the credential is for, e.g. "
                              "\"deploy to AWS in us-east-1\"")});
  }
  if (need.context.size() > kMaxContextEntries) {
    v.push_back({"need.context", absl::StrCat("at most ", kMaxContextEntries,
                                              " context entries are accepted")});
  }
  for (const auto& [k, val] : need.context) {
    const std::string field = absl::StrCat("need.context.", EscapeForTerminal(k.substr(0, kMaxContextKey)));
    CheckShownText(field + " (key)", k, false, v);
    CheckShownText(field, val, false, v);
    if (k.empty() || k.size() > kMaxContextKey || val.size() > kMaxContextValue) {
      v.push_back({absl::StrCat("need.context.", k.substr(0, kMaxContextKey)),
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

absl::Status CheckReason(const std::string& reason) {
  if (reason.size() <= kMaxReason) return absl::OkStatus();
  return InvalidArgumentWithViolations(
      "reason too long", {{"reason", absl::StrCat("at most ", kMaxReason, " characters")}});
}

// NOT_FOUND for an unknown request; FAILED_PRECONDITION naming the decision
// of one that is no longer open.
absl::Status DecidedRequestError(const absl::StatusOr<RequestRecord>& stored,
                                 const std::string& request_id) {
  if (!stored.ok()) return stored.status();
  return absl::FailedPreconditionError(
      absl::StrCat("request ", request_id, " was already decided: ", stored->decision));
}

// NOT_FOUND for an unknown grant; FAILED_PRECONDITION saying how one that is
// no longer active ended.
absl::Status EndedGrantError(const absl::StatusOr<GrantRecord>& stored,
                             const std::string& grant_id) {
  if (!stored.ok()) return stored.status();
  return absl::FailedPreconditionError(absl::StrCat(
      "grant ", grant_id, " has already ended",
      stored->end_reason.empty() ? " (expired)" : absl::StrCat(" (", stored->end_reason, ")")));
}

WatchEvent MakeEvent(WatchEventKind kind, RequestView request) {
  WatchEvent e;
  e.kind = kind;
  e.request = std::move(request);
  return e;
}

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
  return s != RequestState::kPendingApproval && s != RequestState::kNeedsInput &&
         s != RequestState::kUnspecified;
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
                               AuditLog* audit, const Sealer* sealer, Clock clock,
                               RequestOptions options)
    : store_(store),
      credentials_(credentials),
      audit_(audit),
      rows_(sealer),
      clock_(std::move(clock)),
      options_(options) {}

absl::Status RequestManager::Recover() {
  absl::MutexLock lock(&mu_);
  // A spill left by a run that ended before the store took it back: the
  // store takes it now, or (still refusing writes) its rows are laid over
  // the store's below.
  if (options_.spill.open) {
    absl::Status opened = OpenSpill(/*create=*/false);
    if (!opened.ok() && !absl::IsNotFound(opened)) return opened;
    if (opened.ok()) TakeBackSpill().IgnoreError();
  }
  const absl::Time now = clock_();
  std::map<std::string, RequestRecord> open;
  std::map<std::string, GrantRecord> grants;
  std::map<std::string, StandingRecord> standing;
  std::map<std::pair<std::string, std::string>, RequestRecord> decided;
  Effects refused;
  for (Store* store : {store_, spill_.get()}) {
    if (store == nullptr) continue;
    const bool spill = store != store_;
    auto verified = [&](auto& rows, absl::string_view what, auto id_of) {
      RefuseUnverified(rows, what, id_of, spill ? "the spill" : "the store", refused);
    };
    // Every row that can still be acted on: open requests, and the recent
    // decisions an agent may ask about again (from the spill too, so that a
    // decision recorded there closes a request the store still has open).
    CB_ASSIGN_OR_RETURN(std::vector<RequestRecord> requests,
                        store->ListRequests(/*open_only=*/false));
    const absl::Time recent = now - options_.max_grant_ttl;
    requests.erase(std::remove_if(requests.begin(), requests.end(),
                                  [recent](const RequestRecord& r) {
                                    return r.decided_at != absl::InfinitePast() &&
                                           r.decided_at < recent;
                                  }),
                   requests.end());
    verified(requests, "request", [](const RequestRecord& r) { return r.request_id; });
    for (RequestRecord& r : requests) {
      if (r.decided_at != absl::InfinitePast()) {
        open.erase(r.request_id);
        decided[{r.session_key, r.need_id}] = std::move(r);
      } else {
        open[r.request_id] = std::move(r);
      }
    }
    ListGrantsOptions grant_options;
    grant_options.now = now;
    grant_options.limit = kAll;
    grant_options.include_ended = spill;
    CB_ASSIGN_OR_RETURN(std::vector<GrantRecord> listed, store->ListGrants(grant_options));
    verified(listed, "grant", [](const GrantRecord& g) { return g.grant_id; });
    for (GrantRecord& g : listed) {
      if (GrantEnded(g, now)) {
        grants.erase(g.grant_id);
      } else {
        grants[g.grant_id] = std::move(g);
      }
    }
    CB_ASSIGN_OR_RETURN(std::vector<StandingRecord> approvals, store->ListStanding());
    verified(approvals, "standing approval", [](const StandingRecord& a) { return a.id; });
    for (StandingRecord& a : approvals) standing[a.id] = std::move(a);
  }
  // Refused either way; a store that cannot take the events must not stop the start.
  if (!refused.write.audit.empty()) Commit(refused).IgnoreError();
  for (auto& [id, r] : open) {
    Session& session = sessions_[r.session_key];
    session.disconnected_at = now;
    away_.insert({now, r.session_key});
    session.caller.peer = r.agent_peer;
    by_need_[{r.session_key, r.need_id}] = r.request_id;
    AddOpen(std::move(r));
  }
  for (auto& [id, g] : grants) active_grants_[id] = std::move(g);
  // A need resent after a restart gets its decision, not a new request (and
  // an approved grant nobody received yet goes to the first to ask).
  for (auto& [key, r] : decided) {
    if (open.count(r.request_id) == 0) decided_[key] = std::move(r);
  }
  standing_.clear();
  for (auto& [id, a] : standing) standing_.push_back(std::move(a));
  // Oldest first, as the store lists them.
  std::stable_sort(standing_.begin(), standing_.end(),
                   [](const StandingRecord& a, const StandingRecord& b) {
                     return a.created_at < b.created_at;
                   });
  return absl::OkStatus();
}

AuditRecord RequestManager::Event(absl::string_view kind, const Caller& caller,
                                  const RequestRecord* request,
                                  const GrantRecord* grant, absl::string_view outcome,
                                  std::string detail) const {
  AuditRecord e;
  e.time = clock_();
  e.kind = std::string(kind);
  e.role = caller.role;
  e.peer = caller.peer;
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
  e.outcome = std::string(outcome);
  e.detail = std::move(detail);
  return e;
}

void RequestManager::HandOver(const std::pair<const std::pair<std::string, std::string>,
                                               RequestRecord>& decided,
                              const Caller& caller, NeedUpdate& u) {
  const std::string grant_id = u.grant->record.grant_id;
  auto holder = grant_agents_.find(grant_id);
  if (holder == grant_agents_.end()) {
    grant_agents_[grant_id] = caller;  // Not handed to anyone yet.
    return;
  }
  if (holder->second.SameProcess(caller)) return;
  u.grant.reset();
  u.state = RequestState::kCancelled;
  u.reason = absl::StrCat("grant ", grant_id, " was handed to another process (",
                          holder->second.peer, "); send a new need to be asked for your own");
  Effects refused;
  refused.write.audit.push_back(Event("grant.handover_refused", caller, &decided.second, nullptr,
                                      "PERMISSION_DENIED", u.reason));
  Commit(refused).IgnoreError();
}

template <typename Row, typename IdOf>
void RequestManager::RefuseUnverified(std::vector<Row>& rows, absl::string_view what, IdOf id_of,
                                      absl::string_view where, Effects& refused) {
  auto bad = std::remove_if(rows.begin(), rows.end(),
                            [this](const Row& row) { return !rows_.Verify(row); });
  for (auto it = bad; it != rows.end(); ++it) {
    const std::string detail =
        absl::StrCat(what, " ", id_of(*it), " in ", where,
                     " was refused: its MAC does not verify, so it was written or edited "
                     "behind the broker's back; it is not acted on");
    std::cerr << "credbrokerd: DATA_LOSS: " << detail << "\n";
    Caller broker;
    broker.role = "broker";
    broker.peer = "credbrokerd";
    refused.write.audit.push_back(Event("row.refused", broker, nullptr, nullptr, "DATA_LOSS",
                                        detail));
  }
  rows.erase(bad, rows.end());
}

absl::Status RequestManager::Commit(Effects& effects) {
  for (AuditRecord& e : effects.write.audit) e.time = clock_();
  rows_.Sign(effects.write);
  const Store::AuditHashFn hash = audit_->HashFn();
  if (spill_ == nullptr) {
    absl::Status s = store_->WriteFlow(effects.write, hash);
    if (s.ok() || !options_.spill.open || !RefusedWrite(s)) return s;
    absl::Status opened = OpenSpill(/*create=*/true);
    if (!opened.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat(s.message(), "; the spill could not take the write either: ",
                                       opened.message()));
    }
    std::cerr << "credbrokerd: the store refuses writes (" << s.message()
              << "); approvals go on, recorded in the spill until the store can write again\n";
  }
  return spill_->WriteFlow(effects.write, hash);
}

absl::Status RequestManager::OpenSpill(bool create) {
  CB_ASSIGN_OR_RETURN(std::unique_ptr<Store> spill, options_.spill.open(create));
  absl::StatusOr<std::string> id = spill->GetMeta(kSpillIdKey);
  if (id.ok()) {
    // A spill the store took back already, whose files could not be
    // removed then: its rows are older than the store's. Never reuse it.
    absl::StatusOr<std::string> taken = store_->GetMeta(SpillTakenKey(*id));
    if (!taken.ok() && !absl::IsNotFound(taken.status())) return taken.status();
    if (taken.ok()) {
      spill.reset();
      CB_RETURN_IF_ERROR(RemoveSpill());
      if (!create) return absl::NotFoundError("the spill was taken back already");
      CB_ASSIGN_OR_RETURN(spill, options_.spill.open(/*create=*/true));
      id = absl::NotFoundError("a new spill");
    }
  }
  if (absl::IsNotFound(id.status())) {
    id = RandomHex(16);
    CB_RETURN_IF_ERROR(spill->PutMeta(kSpillIdKey, *id));
  }
  if (!id.ok()) return id.status();
  spill_ = std::move(spill);
  spill_id_ = *std::move(id);
  return absl::OkStatus();
}

absl::Status RequestManager::RemoveSpill() {
  return options_.spill.remove ? options_.spill.remove()
                               : absl::FailedPreconditionError("the spill cannot be removed");
}

absl::Status RequestManager::TakeBackSpill() {
  if (spill_ == nullptr) return absl::OkStatus();
  const std::string marker = SpillTakenKey(spill_id_);
  absl::StatusOr<std::string> taken = store_->GetMeta(marker);
  if (!taken.ok() && !absl::IsNotFound(taken.status())) return taken.status();
  if (!taken.ok()) {
    FlowWrite all;
    CB_ASSIGN_OR_RETURN(all.requests, spill_->ListRequests(/*open_only=*/false));
    ListGrantsOptions grants;
    grants.include_ended = true;
    grants.limit = kAll;
    CB_ASSIGN_OR_RETURN(all.grants, spill_->ListGrants(grants));
    CB_ASSIGN_OR_RETURN(all.standing, spill_->ListStanding());
    Effects refused;
    RefuseUnverified(all.requests, "request", [](const RequestRecord& r) { return r.request_id; },
                     "the spill", refused);
    RefuseUnverified(all.grants, "grant", [](const GrantRecord& g) { return g.grant_id; },
                     "the spill", refused);
    RefuseUnverified(all.standing, "standing approval", [](const StandingRecord& a) { return a.id; },
                     "the spill", refused);
    CB_ASSIGN_OR_RETURN(all.bindings, spill_->ListBindings(""));
    AuditQuery events;
    events.limit = kAll;
    CB_ASSIGN_OR_RETURN(all.audit, spill_->ListAudit(events));
    // The store re-chains these events: check the spill's chain first, and
    // record where it was broken (edited behind the broker's back).
    std::string prev;
    for (const AuditRecord& e : all.audit) {
      if (e.prev_hash != prev || audit_->HashOf(e) != e.hash) {
        AuditRecord broken = Event("audit.spill_chain_broken", Caller(), nullptr, nullptr,
                                   "error",
                                   absl::StrCat("the spill's audit chain is broken at its event ",
                                                e.sequence, " (", e.kind, ")"));
        all.audit.push_back(std::move(broken));
        break;
      }
      prev = e.hash;
    }
    for (AuditRecord& e : refused.write.audit) all.audit.push_back(std::move(e));
    all.meta.push_back({marker, absl::FormatTime(clock_())});
    rows_.Sign(all);
    CB_RETURN_IF_ERROR(store_->WriteFlow(all, audit_->HashFn()));
    std::cerr << "credbrokerd: the store takes writes again; " << all.requests.size()
              << " requests, " << all.grants.size() << " grants and " << all.audit.size()
              << " audit events recorded in the spill were copied into it\n";
  }
  spill_.reset();
  spill_id_.clear();
  return RemoveSpill();
}

template <typename Read>
auto RequestManager::ReadFlowRow(Read read) {
  if (spill_ != nullptr) {
    auto row = read(*spill_);
    if (!absl::IsNotFound(row.status())) return row;
  }
  return read(*store_);
}

void RequestManager::NotifyAgent(const std::string& session_key,
                                 const NeedUpdate& update) {
  auto it = sessions_.find(session_key);
  if (it != sessions_.end() && it->second.listener) it->second.listener(update);
}

void RequestManager::Notify(const Effects& effects) {
  for (const auto& [session_key, update] : effects.agent_updates) {
    auto it = sessions_.find(session_key);
    if (it != sessions_.end() && it->second.listener) it->second.listener(update);
  }
  for (const WatchEvent& event : effects.watch_events) {
    for (const auto& [id, listener] : watchers_) listener(event);
  }
}

RequestView RequestManager::ViewOf(const RequestRecord& r) const {
  RequestView v;
  v.record = r;
  auto it = sessions_.find(r.session_key);
  v.agent_connected = it != sessions_.end() && static_cast<bool>(it->second.listener);
  return v;
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
      u.message = absl::StrCat("waiting for the user to enter the ", r.provider,
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
      absl::StatusOr<CredentialManager::StoredValues> values = credentials_->GetValues(
          g->second.provider, g->second.profile, g->second.credential_version);
      if (!values.ok()) {
        u.state = RequestState::kCancelled;
        u.reason = absl::StrCat("the granted credential is no longer available: ",
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

absl::StatusOr<Grant> RequestManager::IssueGrant(const RequestRecord& request,
                                                 Scope scope, absl::Duration ttl,
                                                 absl::Time now, const Caller& caller,
                                                 Effects& effects,
                                                 std::string& rotation_key) {
  CB_ASSIGN_OR_RETURN(CredentialManager::StoredValues values,
                      credentials_->GetValues(request.provider, request.profile, 0));
  const std::string resource = ResourceFromContext(request.context);
  BindingRecord binding;
  bool write_binding = false;
  if (!resource.empty()) {
    absl::StatusOr<BindingRecord> existing = ReadFlowRow(
        [&](Store& st) { return st.GetBinding(request.provider, resource); });
    if (existing.ok()) {
      // A resource stays bound to the profile that created it; a grant of
      // that profile refreshes the fingerprint (the approver saw the note).
      write_binding = existing->profile == request.profile &&
                      (existing->fingerprint != values.fingerprint ||
                       existing->credential_version != values.version);
      binding = *std::move(existing);
    } else if (absl::IsNotFound(existing.status())) {
      write_binding = true;
      binding.provider = request.provider;
      binding.resource = resource;
      binding.profile = request.profile;
      binding.created_at = now;
    } else {
      return existing.status();
    }
  }
  if (request.requested_ttl > absl::ZeroDuration()) {
    ttl = std::min(ttl, request.requested_ttl);
  }
  Grant grant;
  GrantRecord& g = grant.record;
  g.grant_id = absl::StrCat("g-", RandomHex(10));
  g.request_id = request.request_id;
  g.session_key = request.session_key;
  g.provider = request.provider;
  g.profile = request.profile;
  g.action = request.action;
  g.credential_version = values.version;
  g.scope = static_cast<int>(scope);
  g.created_at = now;
  g.expires_at = now + std::min(ttl, options_.max_grant_ttl);
  grant.values = std::move(values.values);
  if (write_binding) {
    const bool created = binding.fingerprint.empty();
    binding.fingerprint = values.fingerprint;
    binding.credential_version = values.version;
    binding.grant_id = g.grant_id;
    binding.updated_at = now;
    effects.write.bindings.push_back(binding);
    effects.write.audit.push_back(
        Event(created ? "binding.created" : "binding.updated", caller, &request, &g, "ok",
              absl::StrCat("resource \"", resource, "\" -> ", g.provider, "/", g.profile,
                           " version ", values.version, ", fingerprint ",
                           values.fingerprint)));
  }
  if (values.readiness == Readiness::kRotationDue) {
    std::string key = absl::StrCat("rotation_notified/", g.provider, "/", g.profile, "/",
                                   values.version);
    bool told = rotation_notified_.count(key) > 0;
    if (!told) {
      absl::StatusOr<std::string> meta = ReadFlowRow([&](Store& st) { return st.GetMeta(key); });
      told = meta.ok();
      if (told) rotation_notified_.insert(key);
    }
    if (!told) {
      absl::StatusOr<CredentialSummary> summary =
          credentials_->Get(g.provider, g.profile, values.version);
      if (summary.ok()) {
        WatchEvent event;
        event.kind = WatchEventKind::kRotationDue;
        event.request = ViewOf(request);
        event.message = absl::StrCat(
            g.provider, "/", g.profile, " version ", values.version,
            " is past its rotation period (due ",
            absl::FormatTime("%Y-%m-%d", summary->rotation_due_at, absl::UTCTimeZone()),
            ") and was just granted for \"", request.action,
            "\": create a new key in the provider's console and update the credential.");
        event.credential = *std::move(summary);
        effects.watch_events.push_back(std::move(event));
        effects.write.audit.push_back(Event("credential.rotation_due", caller, &request,
                                            &g, "ok",
                                            absl::StrCat("version ", values.version)));
        rotation_key = std::move(key);
      }
    }
  }
  return grant;
}

void RequestManager::MarkRotationNotified(const std::string& rotation_key) {
  if (rotation_key.empty()) return;
  rotation_notified_.insert(rotation_key);
  // Best effort: without it, watchers may be told once more after a restart.
  store_->PutMeta(rotation_key, "1").IgnoreError();
}

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

std::vector<const RequestRecord*> RequestManager::OpenInSession(
    const std::string& session_key) const {
  // by_need_ is ordered by (session key, need id): one session's open needs
  // are adjacent, so this costs the session's needs, not every open one.
  std::vector<const RequestRecord*> out;
  for (auto it = by_need_.lower_bound({session_key, std::string()});
       it != by_need_.end() && it->first.first == session_key; ++it) {
    out.push_back(&open_.at(it->second));
  }
  return out;
}

absl::StatusOr<int64_t> RequestManager::AttachSession(const std::string& session_key,
                                                      const Caller& caller,
                                                      AgentListener listener) {
  absl::MutexLock lock(&mu_);
  Session& session = sessions_[session_key];
  if (session.listener && !session.caller.SameProcess(caller)) {
    Effects refused;
    refused.write.audit.push_back(Event(
        "session.attach_refused", caller, nullptr, nullptr, "ALREADY_EXISTS",
        absl::StrCat("session ", session_key, " is attached by ", session.caller.peer)));
    Commit(refused).IgnoreError();
    return absl::AlreadyExistsError(absl::StrCat(
        "session ", session_key, " is attached by another live stream (", session.caller.peer,
        "); a session belongs to one agent process. Use a session key of your own (or, if "
        "that agent just exited, try again in a moment)"));
  }
  bool was_away = !session.listener && session.disconnected_at != absl::InfiniteFuture();
  // Known before: another process taking the session over (not the first
  // attach, and not the same process coming back).
  const bool other_process = !session.caller.peer.empty() && !session.caller.SameProcess(caller);
  away_.erase({session.disconnected_at, session_key});
  if (other_process) {
    // SESSION-scope approvals were given to the process that asked: a new
    // process of the session is asked again.
    session.approvals.clear();
  }
  session.caller = caller;
  session.listener = std::move(listener);
  session.attachment = next_id_++;
  session.disconnected_at = absl::InfiniteFuture();
  if (was_away) {
    Effects effects;
    for (const RequestRecord* r : OpenInSession(session_key)) {
      WatchEvent e = MakeEvent(WatchEventKind::kAgentReconnected, ViewOf(*r));
      if (other_process) {
        e.message = absl::StrCat("re-attached from another process: ", caller.peer);
      }
      effects.watch_events.push_back(std::move(e));
    }
    if (other_process) {
      effects.write.audit.push_back(Event("session.reattached", caller, nullptr, nullptr, "ok",
                                          "by another process; session approvals dropped"));
      Commit(effects).IgnoreError();
    }
    Notify(effects);
  }
  return session.attachment;
}

void RequestManager::DetachSession(const std::string& session_key, int64_t attachment) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(session_key);
  if (it == sessions_.end() || it->second.attachment != attachment) return;
  it->second.listener = nullptr;
  it->second.disconnected_at = clock_();
  away_.insert({it->second.disconnected_at, session_key});
  Effects effects;
  for (const RequestRecord* r : OpenInSession(session_key)) {
    effects.watch_events.push_back(MakeEvent(WatchEventKind::kAgentDisconnected, ViewOf(*r)));
  }
  Notify(effects);
}

absl::StatusOr<NeedUpdate> RequestManager::SubmitNeed(const std::string& session_key,
                                                      const Caller& caller, Need need) {
  CB_RETURN_IF_ERROR(CheckNeed(need));
  CB_ASSIGN_OR_RETURN(const Provider* provider,
                      credentials_->registry().Get(need.provider));
  CB_ASSIGN_OR_RETURN(ProfileChoice choice,
                      credentials_->ChooseProfile(
                          provider->spec().id, need.profile, ResourceFromContext(need.context),
                          [this](absl::string_view p, absl::string_view resource) {
                            absl::MutexLock lock(&mu_);
                            return ReadFlowRow(
                                [&](Store& st) { return st.GetBinding(p, resource); });
                          }));
  const std::string& profile = choice.profile;

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
  const int open_in_session = static_cast<int>(OpenInSession(session_key).size());
  if (open_in_session >= options_.max_open_per_session) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this agent session already has ", open_in_session,
        " needs waiting for a decision; wait for them or cancel some"));
  }

  absl::Time now = clock_();
  RequestRecord r;
  r.request_id = absl::StrCat("r-", RandomHex(10));
  r.session_key = session_key;
  r.need_id = need.need_id;
  r.provider = provider->spec().id;
  r.profile = profile;
  r.action = need.action;
  r.context = need.context;
  r.requested_ttl = need.requested_ttl;
  r.agent_peer = caller.peer;
  r.created_at = now;
  r.expires_at = now + options_.pending_timeout;
  r.binding_note = choice.note;

  absl::StatusOr<CredentialSummary> stored = credentials_->Get(r.provider, r.profile, 0);
  bool usable = stored.ok() && Usable(stored->readiness);
  if (!stored.ok() && !absl::IsNotFound(stored.status()) &&
      !absl::IsDataLoss(stored.status())) {
    return stored.status();
  }

  Effects effects;
  // A SESSION approval or a standing approval grants without asking.
  Scope auto_scope = Scope::kUnspecified;
  std::string auto_detail;
  if (usable) {
    Session& session = sessions_[session_key];
    auto approval = session.approvals.find({r.provider, r.profile});
    if (approval != session.approvals.end() && approval->second > now) {
      auto_scope = Scope::kSession;
      auto_detail = "granted under this session's approval";
    } else if (const StandingRecord* s = MatchStanding(r, now)) {
      auto_scope = Scope::kStanding;
      auto_detail = absl::StrCat("granted under standing approval ", s->id);
    }
  }
  if (auto_scope != Scope::kUnspecified) {
    absl::Duration ttl = auto_scope == Scope::kSession
                             ? sessions_[session_key].approvals[{r.provider, r.profile}] - now
                             : options_.once_ttl;
    std::string rotation_key;
    CB_ASSIGN_OR_RETURN(Grant grant,
                        IssueGrant(r, auto_scope, ttl, now, caller, effects, rotation_key));
    r.state = static_cast<int>(RequestState::kGranted);
    r.decided_at = now;
    r.decision = auto_detail;
    r.grant_id = grant.record.grant_id;
    effects.write.requests.push_back(r);
    effects.write.grants.push_back(grant.record);
    effects.write.audit.push_back(Event("request.created", caller, &r, nullptr, "ok", ""));
    effects.write.audit.push_back(
        Event("grant.created", caller, &r, &grant.record, "ok",
              absl::StrCat(ScopeName(auto_scope), ", ", auto_detail, ", version ",
                           grant.record.credential_version)));
    CB_RETURN_IF_ERROR(Commit(effects));
    MarkRotationNotified(rotation_key);
    active_grants_[grant.record.grant_id] = grant.record;
    grant_agents_[grant.record.grant_id] = caller;
    decided_[key] = r;
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

  if (usable) {
    r.state = static_cast<int>(RequestState::kPendingApproval);
  } else {
    r.state = static_cast<int>(RequestState::kNeedsInput);
    r.missing_fields = stored.ok() && !stored->missing_fields.empty()
                           ? stored->missing_fields
                           : MissingFields(provider->spec(), FieldValues());
  }
  effects.write.requests.push_back(r);
  effects.write.audit.push_back(Event("request.created", caller, &r, nullptr, "ok",
                                      std::string(RequestStateName(
                                          static_cast<RequestState>(r.state)))));
  CB_RETURN_IF_ERROR(Commit(effects));
  by_need_[key] = r.request_id;
  AddOpen(r);
  request_agents_[r.request_id] = caller;
  Session& session = sessions_[session_key];
  if (session.caller.peer.empty()) session.caller = caller;
  effects.watch_events.push_back(MakeEvent(WatchEventKind::kAdded, ViewOf(r)));
  NeedUpdate u = UpdateOf(r);
  effects.agent_updates.push_back({session_key, u});
  Notify(effects);
  return u;
}

absl::Status RequestManager::CheckNotSelfApproval(const RequestRecord& r,
                                                  const Caller& caller,
                                                  absl::string_view what) {
  if (!options_.is_same_or_descendant) return absl::OkStatus();
  std::string refusal;
  if (!caller.identified() && !caller.client_certificate) {
    // Not knowing who calls is not "someone else".
    refusal = absl::StrCat(
        "the broker cannot tell which process is calling (", caller.peer,
        "), so it cannot tell it from the agent; decide over the Unix socket, or over TCP "
        "with a client certificate (--tls_client_ca)");
  } else if (caller.identified()) {
    // The process that asked, and the one attached to its session now (an
    // agent that re-attached from a new process).
    std::vector<const Caller*> agents;
    if (auto a = request_agents_.find(r.request_id); a != request_agents_.end()) {
      agents.push_back(&a->second);
    }
    if (auto s = sessions_.find(r.session_key); s != sessions_.end()) {
      agents.push_back(&s->second.caller);
    }
    for (const Caller* agent : agents) {
      if (agent->identified() && options_.is_same_or_descendant(caller.pid, *agent)) {
        refusal = absl::StrCat("the caller is the requesting agent's own process or runs "
                               "under it (",
                               caller.peer,
                               "); decide from the IDE or a terminal the agent did not start");
        break;
      }
    }
  }
  if (refusal.empty()) return absl::OkStatus();
  Effects refused;
  refused.write.audit.push_back(Event(absl::StrCat("request.", what, "_refused"), caller, &r,
                                      nullptr, "PERMISSION_DENIED",
                                      absl::StrCat("self-approval check: ", refusal)));
  Commit(refused).IgnoreError();
  return absl::PermissionDeniedError(
      absl::StrCat("refusing to ", what, " request ", r.request_id, ": ", refusal));
}

void RequestManager::Close(RequestRecord& r, RequestState state, std::string decision,
                           absl::string_view audit_kind, const Caller& caller,
                           Effects& effects) {
  r.state = static_cast<int>(state);
  r.decided_at = clock_();
  r.decision = std::move(decision);
  effects.write.requests.push_back(r);
  effects.write.audit.push_back(Event(audit_kind, caller, &r, nullptr, "ok", r.decision));
  WatchEventKind kind = state == RequestState::kExpired     ? WatchEventKind::kExpired
                        : state == RequestState::kCancelled ? WatchEventKind::kCancelled
                                                            : WatchEventKind::kResolved;
  effects.watch_events.push_back(MakeEvent(kind, ViewOf(r)));
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
  Close(r, RequestState::kCancelled, "cancelled by the agent", "request.cancelled",
        caller, effects);
  CB_RETURN_IF_ERROR(Commit(effects));
  EraseOpen(r.request_id);
  request_agents_.erase(r.request_id);
  by_need_.erase(it);
  decided_[{session_key, need_id}] = r;
  effects.agent_updates.push_back({session_key, UpdateOf(r)});
  Notify(effects);
  return absl::OkStatus();
}

absl::Status RequestManager::ReleaseGrant(const std::string& grant_id,
                                          const Caller& caller) {
  absl::MutexLock lock(&mu_);
  auto it = active_grants_.find(grant_id);
  if (it == active_grants_.end()) {
    return EndedGrantError(ReadFlowRow([&](Store& st) { return st.GetGrant(grant_id); }),
                           grant_id);
  }
  auto holder = grant_agents_.find(grant_id);
  std::string refusal;
  if (!caller.identified() && !caller.client_certificate) {
    refusal = absl::StrCat("the broker cannot tell which process is calling (", caller.peer,
                           "); release it over the Unix socket, or over TCP with a client "
                           "certificate");
  } else if (holder != grant_agents_.end() && holder->second.identified() &&
             !holder->second.SameProcess(caller)) {
    refusal = absl::StrCat("grant ", grant_id, " was handed to another process (",
                           holder->second.peer, "); only that process may release it");
  }
  if (!refusal.empty()) {
    Effects refused;
    refused.write.audit.push_back(Event("grant.release_refused", caller, nullptr, &it->second,
                                        "PERMISSION_DENIED", refusal));
    Commit(refused).IgnoreError();
    return absl::PermissionDeniedError(refusal);
  }
  GrantRecord g = it->second;
  g.ended_at = clock_();
  g.end_reason = "released";
  Effects effects;
  effects.write.grants.push_back(g);
  effects.write.audit.push_back(Event("grant.released", caller, nullptr, &g, "ok", ""));
  CB_RETURN_IF_ERROR(Commit(effects));
  active_grants_.erase(it);
  grant_agents_.erase(grant_id);
  if (g.scope == static_cast<int>(Scope::kSession)) {
    auto s = sessions_.find(g.session_key);
    if (s != sessions_.end()) s->second.approvals.erase({g.provider, g.profile});
  }
  return absl::OkStatus();
}

int64_t RequestManager::Watch(WatchListener listener) {
  absl::MutexLock lock(&mu_);
  int64_t id = next_id_++;
  for (const auto& [rid, r] : open_) listener(MakeEvent(WatchEventKind::kSnapshot, ViewOf(r)));
  listener(MakeEvent(WatchEventKind::kSnapshotDone, RequestView()));
  watchers_[id] = std::move(listener);
  return id;
}

void RequestManager::Unwatch(int64_t watcher) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(watcher);
}

std::vector<RequestView> RequestManager::PendingRequests() {
  absl::MutexLock lock(&mu_);
  std::vector<RequestView> out;
  for (const auto& [id, r] : open_) out.push_back(ViewOf(r));
  return out;
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
      absl::StatusOr<RequestRecord> stored =
          ReadFlowRow([&](Store& st) { return st.GetRequest(request_id); });
      if (!stored.ok()) return stored.status();
      form.request = ViewOf(*stored);
    }
    provider_id = form.request->record.provider;
    profile = form.request->record.profile;
  } else if (provider_id.empty()) {
    return InvalidArgumentWithViolations(
        "say which form", {{"request_id", "give a request id, or a provider (and profile)"}});
  }
  CB_ASSIGN_OR_RETURN(const Provider* provider, credentials_->registry().Get(provider_id));
  CB_ASSIGN_OR_RETURN(profile, credentials_->ResolveProfile(provider->spec().id, profile));
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
  if (provider->spec().oauth) {
    form.notes.push_back(
        "Netlify connects through its OAuth flow: the IDE opens Netlify's "
        "authorization page and stores the access token it returns.");
  }
  for (const FieldSpec& spec : provider->spec().fields) {
    if (spec.generatable) {
      form.notes.push_back(absl::StrCat(
          spec.label,
          ": leave it empty and ask the broker to generate a strong one "
          "(generate: \"",
          spec.name,
          "\"): 32 random letters, digits and symbols from libsodium's "
          "generator, stored encrypted and released only with the grant."));
    }
  }
  if (!stored.empty()) {
    form.notes.push_back(
        "A credential is stored: sensitive fields left empty keep their stored values.");
  }
  return form;
}

absl::StatusOr<ApproveResult> RequestManager::Approve(ApproveInput input,
                                                      const Caller& caller) {
  absl::MutexLock lock(&mu_);
  auto it = open_.find(input.request_id);
  if (it == open_.end()) {
    return DecidedRequestError(
        ReadFlowRow([&](Store& st) { return st.GetRequest(input.request_id); }),
        input.request_id);
  }
  RequestRecord r = it->second;
  if (clock_() >= r.expires_at) {
    // Expired (maybe while the broker was down) but not yet swept by Tick.
    return absl::FailedPreconditionError(
        absl::StrCat("request ", r.request_id, " expired at ",
                     absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", r.expires_at, absl::UTCTimeZone()),
                     "; the agent must ask again"));
  }
  CB_RETURN_IF_ERROR(CheckNotSelfApproval(r, caller, "approve"));
  if (input.scope == Scope::kUnspecified) input.scope = Scope::kOnce;
  absl::Duration ttl = input.ttl;
  if (ttl < absl::ZeroDuration()) {
    return InvalidArgumentWithViolations("invalid ttl", {{"ttl", "must not be negative"}});
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
        "grant too long", {{"ttl", absl::StrCat("a grant lasts at most ",
                                                absl::FormatDuration(options_.max_grant_ttl))}});
  }
  std::string pattern = input.action_pattern.empty() ? r.action : input.action_pattern;
  if (pattern.size() > kMaxAction) {
    return InvalidArgumentWithViolations(
        "action pattern too long",
        {{"action_pattern", absl::StrCat("at most ", kMaxAction, " characters")}});
  }

  Effects effects;
  if (!input.values.empty() || !input.generate.empty()) {
    PutCredentialInput put;
    put.provider = r.provider;
    put.profile = r.profile;
    put.values = std::move(input.values);
    put.generate = input.generate;
    put.keep_existing = true;
    absl::StatusOr<PutCredentialResult> stored = credentials_->Put(std::move(put));
    if (!stored.ok()) return stored.status();  // The request stays pending.
    effects.write.audit.push_back(
        Event("credential.put", caller, &r, nullptr, "ok",
              absl::StrCat("version ", stored->credential.version, ", fingerprint ",
                           stored->credential.fingerprint)));
  } else {
    absl::StatusOr<CredentialSummary> current = credentials_->Get(r.provider, r.profile, 0);
    if (absl::IsNotFound(current.status()) ||
        (current.ok() && !Usable(current->readiness))) {
      std::vector<std::string> missing =
          current.ok() ? current->missing_fields
                       : MissingFields(credentials_->registry().Find(r.provider)->spec(),
                                       FieldValues());
      return absl::FailedPreconditionError(absl::StrCat(
          "no ready ", r.provider, "/", r.profile,
          " credential is stored: approve with the values",
          missing.empty() ? "" : absl::StrCat(" (", absl::StrJoin(missing, ", "), ")")));
    }
    if (!current.ok()) return current.status();
  }

  absl::Time now = clock_();
  std::string rotation_key;
  CB_ASSIGN_OR_RETURN(Grant grant,
                      IssueGrant(r, input.scope, ttl, now, caller, effects, rotation_key));
  ApproveResult result;
  result.grant_id = grant.record.grant_id;
  std::string decision = absl::StrCat("approved (", ScopeName(input.scope), ")");
  if (input.scope == Scope::kStanding) {
    StandingRecord s;
    s.id = absl::StrCat("s-", RandomHex(8));
    s.provider = r.provider;
    s.profile = r.profile;
    s.action_pattern = pattern;
    s.created_at = now;
    s.expires_at = now + ttl;
    effects.write.standing.push_back(s);
    result.standing_id = s.id;
    effects.write.audit.push_back(Event(
        "standing.created", caller, &r, nullptr, "ok",
        absl::StrCat(s.id, " for \"", pattern, "\" until ",
                     absl::FormatTime(absl::RFC3339_sec, s.expires_at, absl::UTCTimeZone()))));
    // The standing rule outlives this grant; the grant itself is one-off.
    grant.record.expires_at = std::min(grant.record.expires_at, now + options_.once_ttl);
  }
  r.grant_id = grant.record.grant_id;
  Close(r, RequestState::kGranted, decision, "request.approved", caller, effects);
  effects.write.grants.push_back(grant.record);
  effects.write.audit.push_back(
      Event("grant.created", caller, &r, &grant.record, "ok",
            absl::StrCat(ScopeName(input.scope), ", version ",
                         grant.record.credential_version, ", expires ",
                         absl::FormatTime(absl::RFC3339_sec, grant.record.expires_at,
                                          absl::UTCTimeZone()))));
  // Fail closed: without its durable decision and audit events, nothing is
  // released and the request stays pending.
  absl::Status committed = Commit(effects);
  if (!committed.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "the decision could not be recorded, so nothing was released; the "
        "request is still pending: ",
        committed.message()));
  }
  MarkRotationNotified(rotation_key);
  EraseOpen(r.request_id);
  by_need_.erase({r.session_key, r.need_id});
  decided_[{r.session_key, r.need_id}] = r;
  active_grants_[grant.record.grant_id] = grant.record;
  request_agents_.erase(r.request_id);
  // The values reach the process attached to the session now; with none
  // attached, the first process of the session to ask again gets them.
  if (auto s = sessions_.find(r.session_key); s != sessions_.end() && s->second.listener) {
    grant_agents_[grant.record.grant_id] = s->second.caller;
  }
  if (!effects.write.standing.empty()) standing_.push_back(effects.write.standing[0]);
  if (input.scope == Scope::kSession) {
    sessions_[r.session_key].approvals[{r.provider, r.profile}] = grant.record.expires_at;
  }
  NeedUpdate u;
  u.need_id = r.need_id;
  u.request_id = r.request_id;
  u.state = RequestState::kGranted;
  u.message = decision;
  u.grant = std::move(grant);
  effects.agent_updates.push_back({r.session_key, std::move(u)});
  Notify(effects);
  return result;
}

absl::Status RequestManager::Deny(const std::string& request_id,
                                  const std::string& reason, const Caller& caller) {
  CB_RETURN_IF_ERROR(CheckReason(reason));
  absl::MutexLock lock(&mu_);
  auto it = open_.find(request_id);
  if (it == open_.end()) {
    return DecidedRequestError(
        ReadFlowRow([&](Store& st) { return st.GetRequest(request_id); }), request_id);
  }
  RequestRecord r = it->second;
  CB_RETURN_IF_ERROR(CheckNotSelfApproval(r, caller, "deny"));
  Effects effects;
  Close(r, RequestState::kDenied,
        reason.empty() ? std::string("denied") : absl::StrCat("denied: ", reason),
        "request.denied", caller, effects);
  CB_RETURN_IF_ERROR(Commit(effects));
  EraseOpen(r.request_id);
  by_need_.erase({r.session_key, r.need_id});
  request_agents_.erase(r.request_id);
  decided_[{r.session_key, r.need_id}] = r;
  NeedUpdate u = UpdateOf(r);
  u.reason = reason.empty() ? "denied by the user" : reason;
  effects.agent_updates.push_back({r.session_key, std::move(u)});
  Notify(effects);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<GrantRecord>> RequestManager::ListGrants(
    const ListGrantsOptions& options) {
  {
    absl::MutexLock lock(&mu_);
    if (spill_ != nullptr) return ListGrantsWithSpill(options);
  }
  return store_->ListGrants(options);
}

absl::StatusOr<std::vector<GrantRecord>> RequestManager::ListGrantsWithSpill(
    const ListGrantsOptions& options) {
  // Every spilled grant, ended ones too: the spill's rows are newer, and a
  // grant ended there replaces the store's active row of the same id.
  ListGrantsOptions all = options;
  all.include_ended = true;
  all.limit = kAll;
  CB_ASSIGN_OR_RETURN(std::vector<GrantRecord> spilled, spill_->ListGrants(all));
  // As many more from the store as the spill may take out of its page, so
  // that a full page stays full (a short one says there is no more).
  ListGrantsOptions from_store = options;
  from_store.limit = static_cast<int>(
      std::min<int64_t>(kAll, int64_t{options.limit} + static_cast<int64_t>(spilled.size())));
  CB_ASSIGN_OR_RETURN(std::vector<GrantRecord> grants, store_->ListGrants(from_store));
  std::map<std::pair<absl::Time, std::string>, GrantRecord> merged;
  for (GrantRecord& g : grants) merged[{g.created_at, g.grant_id}] = std::move(g);
  for (GrantRecord& g : spilled) merged[{g.created_at, g.grant_id}] = std::move(g);
  std::vector<GrantRecord> out;
  for (auto& [key, g] : merged) {
    if (static_cast<int>(out.size()) == options.limit) break;
    if (GrantEnded(g, options.now) && !options.include_ended) continue;
    out.push_back(std::move(g));
  }
  return out;
}

absl::Status RequestManager::RevokeGrant(const std::string& grant_id,
                                         const std::string& reason, const Caller& caller) {
  CB_RETURN_IF_ERROR(CheckReason(reason));
  absl::MutexLock lock(&mu_);
  auto it = active_grants_.find(grant_id);
  if (it == active_grants_.end()) {
    return EndedGrantError(ReadFlowRow([&](Store& st) { return st.GetGrant(grant_id); }),
                           grant_id);
  }
  GrantRecord g = it->second;
  g.ended_at = clock_();
  g.end_reason = reason.empty() ? "revoked" : absl::StrCat("revoked: ", reason);
  Effects effects;
  effects.write.grants.push_back(g);
  effects.write.audit.push_back(Event("grant.revoked", caller, nullptr, &g, "ok", reason));
  CB_RETURN_IF_ERROR(Commit(effects));
  active_grants_.erase(it);
  grant_agents_.erase(grant_id);
  auto s = sessions_.find(g.session_key);
  if (s != sessions_.end()) s->second.approvals.erase({g.provider, g.profile});
  // Tell the agent to stop using the values.
  std::string need_id;
  for (const auto& [key, r] : decided_) {
    if (r.request_id == g.request_id) need_id = r.need_id;
  }
  NeedUpdate u;
  u.need_id = need_id;
  u.request_id = g.request_id;
  u.state = RequestState::kRevoked;
  u.reason = g.end_reason;
  u.message = absl::StrCat("grant ", g.grant_id, " was revoked: stop using its values");
  effects.agent_updates.push_back({g.session_key, std::move(u)});
  Notify(effects);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<StandingRecord>> RequestManager::ListStanding() {
  absl::MutexLock lock(&mu_);
  return standing_;
}

absl::Status RequestManager::RevokeStanding(const std::string& id, const Caller& caller) {
  absl::MutexLock lock(&mu_);
  for (StandingRecord& s : standing_) {
    if (s.id != id) continue;
    if (s.revoked) {
      return absl::FailedPreconditionError(
          absl::StrCat("standing approval ", id, " was already revoked"));
    }
    StandingRecord revoked = s;
    revoked.revoked = true;
    Effects effects;
    effects.write.standing.push_back(revoked);
    AuditRecord e = Event("standing.revoked", caller, nullptr, nullptr, "ok", id);
    e.provider = s.provider;
    e.profile = s.profile;
    e.action = s.action_pattern;
    effects.write.audit.push_back(std::move(e));
    CB_RETURN_IF_ERROR(Commit(effects));
    s.revoked = true;
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("no standing approval ", id));
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

void RequestManager::Tick() {
  absl::MutexLock lock(&mu_);
  absl::Time now = clock_();
  if (spill_ != nullptr && now >= next_take_back_) {
    // While the store still refuses writes, each try reads the whole spill
    // under the lock: back off, from one tick up to 8 s.
    if (TakeBackSpill().ok()) {
      take_back_delay_ = absl::ZeroDuration();
    } else {
      take_back_delay_ = std::clamp(2 * take_back_delay_, absl::Milliseconds(250),
                                    absl::Seconds(8));
      next_take_back_ = now + take_back_delay_;
    }
  }
  // The due requests, in request-id order: true when past its timeout,
  // false when its agent has been away past the grace period.
  std::map<std::string, bool> due;
  for (auto it = open_by_expiry_.begin();
       it != open_by_expiry_.end() && it->first <= now; ++it) {
    due[it->second] = true;
  }
  for (auto it = away_.begin();
       it != away_.end() && it->first + options_.grace_period <= now; ++it) {
    for (const RequestRecord* r : OpenInSession(it->second)) due.emplace(r->request_id, false);
  }
  Effects effects;
  std::vector<RequestRecord> closed;
  const Caller broker;
  for (const auto& [id, expired] : due) {
    RequestRecord c = open_.at(id);
    if (expired) {
      Close(c, RequestState::kExpired, "expired: no decision before the timeout",
            "request.expired", broker, effects);
    } else {
      Close(c, RequestState::kCancelled,
            "cancelled: the agent disconnected and did not come back",
            "request.cancelled", broker, effects);
    }
    closed.push_back(std::move(c));
  }
  std::vector<std::string> expired_grants;
  for (const auto& [id, g] : active_grants_) {
    if (g.expires_at <= now) expired_grants.push_back(id);
  }
  if (!closed.empty()) {
    absl::Status s = Commit(effects);
    if (!s.ok()) return;  // Retried on the next tick.
    for (RequestRecord& c : closed) {
      EraseOpen(c.request_id);
      request_agents_.erase(c.request_id);
      by_need_.erase({c.session_key, c.need_id});
      effects.agent_updates.push_back({c.session_key, UpdateOf(c)});
      decided_[{c.session_key, c.need_id}] = std::move(c);
    }
    Notify(effects);
  }
  for (const std::string& id : expired_grants) {
    active_grants_.erase(id);
    grant_agents_.erase(id);
  }
  // Forget sessions gone past the grace period with nothing open.
  for (auto it = away_.begin();
       it != away_.end() && it->first + options_.grace_period <= now;) {
    const std::string& key = it->second;
    // Both maps are ordered by session key first: look at this session's
    // entries only.
    const std::pair<std::string, std::string> first{key, std::string()};
    auto open = by_need_.lower_bound(first);
    if (open != by_need_.end() && open->first.first == key) {
      ++it;
      continue;
    }
    auto d = decided_.lower_bound(first);
    while (d != decided_.end() && d->first.first == key) d = decided_.erase(d);
    sessions_.erase(key);
    it = away_.erase(it);
  }
}

}  // namespace credbroker
