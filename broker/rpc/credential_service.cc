#include "broker/rpc/credential_service.h"

#include <google/protobuf/arena.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/slice.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "broker/common/status_macros.h"
#include "broker/rpc/arena_allocator.h"
#include "broker/rpc/convert.h"
#include "broker/rpc/unary.h"
#include "common/errors.h"

namespace credbroker {
namespace {

// Secret values arrive in request strings owned by gRPC; the adapter moves
// them into wiped memory and clears the originals.
template <typename Request>
Request& Mutable(const Request& request) {
  return const_cast<Request&>(request);
}

// Parses a raw request (GetCredential, ValidateCredential) after its caller
// was authorized; false when the bytes are not a `Request`.
template <typename Request>
bool ParseRequest(const grpc::ByteBuffer& bytes, Request* out) {
  // A small request arrives as one uncompressed slice: parsed in place,
  // without a stream over the buffer.
  grpc::Slice flat;
  if (bytes.TrySingleSlice(&flat).ok()) {
    return out->ParseFromArray(flat.begin(), static_cast<int>(flat.size()));
  }
  grpc::ByteBuffer in(bytes);  // Shares the slices.
  grpc::ProtoBufferReader reader(&in);
  return out->ParseFromZeroCopyStream(&reader);
}

// The start of a raw unary call: the caller authorized for `rpc`, then
// `request`'s bytes parsed into `out`. False when the call was finished
// instead (refused, or bytes that are not a `Request`: INVALID_ARGUMENT).
template <typename Request>
bool StartRawCall(const RpcEnv& env, grpc::CallbackServerContext* context,
                  grpc::ServerUnaryReactor* reactor, absl::string_view rpc,
                  const grpc::ByteBuffer& request, Request* out) {
  if (!AuthorizeUnary(env, context, reactor, Role::kApprover, rpc))
    return false;
  if (ParseRequest(request, out)) return true;
  reactor->Finish(
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                   absl::StrCat("the request is not a ",
                                Request::descriptor()->full_name())));
  return false;
}

// The bytes of the answer `fill` writes into a message of type Message.
// The message lives on an arena whose first block is on the stack, and is
// serialized straight into the slice: no allocation per nested message or
// string, and no copy of the bytes.
template <typename Message, typename Fill>
grpc::Slice Render(const Fill& fill) {
  alignas(std::max_align_t) char block[4096];
  google::protobuf::Arena arena(FirstBlockOptions(block, sizeof(block)));
  auto* message = google::protobuf::Arena::CreateMessage<Message>(&arena);
  fill(message);
  grpc::Slice bytes(message->ByteSizeLong());
  message->SerializeWithCachedSizesToArray(const_cast<uint8_t*>(bytes.begin()));
  return bytes;
}

// Finishes a raw unary call with the answer's bytes, or the error.
void FinishWithAnswer(grpc::ServerUnaryReactor* reactor,
                      const absl::StatusOr<grpc::Slice>& answer,
                      grpc::ByteBuffer* response) {
  if (!answer.ok()) {
    reactor->Finish(ToGrpcStatus(answer.status()));
    return;
  }
  *response = grpc::ByteBuffer(&*answer, 1);
  reactor->Finish(grpc::Status::OK);
}

void FillValidateResponse(const ValidateResult& result,
                          v1::ValidateCredentialResponse* resp) {
  resp->set_valid(result.valid);
  resp->set_readiness(ToProto(result.readiness));
  for (const auto& f : result.findings) ToProto(f, resp->add_findings());
  for (const auto& f : result.missing_fields) resp->add_missing_fields(f);
  for (const auto& p : result.required_permissions)
    resp->add_required_permissions(p);
  for (const auto& f : result.fields) ToProto(f, resp->add_fields());
  for (const auto& c : result.manual_checks) resp->add_manual_checks(c);
  resp->set_profile(result.profile);
}

// The answer `cache` keeps for `key` while it holds; else what `read`
// returns (filling the AnswerLife it is given), `fill`ed into a Message,
// serialized, kept for `key` and returned. Errors are `read`'s.
template <typename Message, typename Read, typename Fill>
absl::StatusOr<grpc::Slice> KeptAnswer(AnswerCache& cache,
                                       CredentialManager& credentials,
                                       std::string key, const Read& read,
                                       const Fill& fill) {
  if (std::optional<grpc::Slice> kept = cache.Find(key, credentials))
    return *std::move(kept);
  CredentialManager::AnswerLife life;
  auto result = read(&life);
  if (!result.ok()) return result.status();
  grpc::Slice bytes =
      Render<Message>([&](Message* message) { fill(*result, message); });
  cache.Keep(std::move(key), bytes, life);
  return bytes;
}

}  // namespace

grpc::ServerUnaryReactor* CredentialServiceImpl::ListProviders(
    grpc::CallbackServerContext* context,
    const v1::ListProvidersRequest* request,
    v1::ListProvidersResponse* response) {
  return RunUnary(
      context, request, response, env_, Role::kApprover, "ListProviders",
      [this](const v1::ListProvidersRequest&,
             v1::ListProvidersResponse& resp) -> absl::Status {
        for (const auto& p : credentials_->registry().providers()) {
          v1::ProviderInfo* out = resp.add_providers();
          ToProto(p->spec(), out);
          CB_ASSIGN_OR_RETURN(std::string def,
                              credentials_->DefaultProfile(p->spec().id));
          out->set_default_profile(def);
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::ListCredentials(
    grpc::CallbackServerContext* context,
    const v1::ListCredentialsRequest* request,
    v1::ListCredentialsResponse* response) {
  return RunUnary(
      context, request, response, env_, Role::kApprover, "ListCredentials",
      [this](const v1::ListCredentialsRequest& req,
             v1::ListCredentialsResponse& resp) -> absl::Status {
        CB_ASSIGN_OR_RETURN(ListCredentialsResult result,
                            credentials_->List(req.provider(), req.page_size(),
                                               req.page_token()));
        for (const auto& c : result.credentials) {
          ToProto(c, resp.add_credentials());
        }
        resp.set_next_page_token(result.next_page_token);
        return absl::OkStatus();
      });
}

absl::StatusOr<grpc::Slice> CredentialServiceImpl::GetCredentialAnswer(
    const v1::GetCredentialRequest& req) {
  return KeptAnswer<v1::CredentialSummary>(
      answers_, *credentials_,
      AnswerCache::Key('g', req.provider(), req.profile(), req.version()),
      [&](CredentialManager::AnswerLife* life) {
        return credentials_->Get(req.provider(), req.profile(), req.version(),
                                 life);
      },
      [](const CredentialSummary& summary, v1::CredentialSummary* message) {
        ToProto(summary, message);
      });
}

absl::StatusOr<grpc::Slice> CredentialServiceImpl::StoredValidationAnswer(
    const v1::ValidateCredentialRequest& req) {
  return KeptAnswer<v1::ValidateCredentialResponse>(
      answers_, *credentials_,
      AnswerCache::Key('v', req.provider(), req.profile(), 0),
      [&](CredentialManager::AnswerLife* life) {
        return credentials_->ValidateStored(req.provider(), req.profile(),
                                            life);
      },
      FillValidateResponse);
}

grpc::ServerUnaryReactor* CredentialServiceImpl::GetCredential(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  v1::GetCredentialRequest req;
  if (StartRawCall(env_, context, reactor, "GetCredential", *request, &req)) {
    FinishWithAnswer(reactor, GetCredentialAnswer(req), response);
  }
  return reactor;
}

grpc::ServerUnaryReactor* CredentialServiceImpl::PutCredential(
    grpc::CallbackServerContext* context,
    const v1::PutCredentialRequest* request,
    v1::PutCredentialResponse* response) {
  Caller caller = CallerOf(env_, *context, "approver");
  return RunUnary(
      context, request, response, env_, Role::kApprover, "PutCredential",
      [this, caller](const v1::PutCredentialRequest& req,
                     v1::PutCredentialResponse& resp) -> absl::Status {
        v1::PutCredentialRequest& m = Mutable(req);
        PutCredentialInput input;
        input.provider = req.provider();
        input.profile = req.profile();
        input.values = TakeValues(m.mutable_values());
        input.file_contents = TakeString(m.mutable_from_file());
        input.keep_existing = req.keep_existing();
        input.generate.assign(req.generate().begin(), req.generate().end());
        if (req.has_rotation_period()) {
          input.rotation_period = FromProto(req.rotation_period());
        }
        CB_ASSIGN_OR_RETURN(PutCredentialResult result,
                            credentials_->Put(std::move(input), caller));
        ToProto(result.credential, resp.mutable_credential());
        for (const auto& f : result.findings) ToProto(f, resp.add_findings());
        for (const auto& g : result.generated) resp.add_generated(g);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::DeleteCredential(
    grpc::CallbackServerContext* context,
    const v1::DeleteCredentialRequest* request,
    v1::DeleteCredentialResponse* response) {
  Caller caller = CallerOf(env_, *context, "approver");
  return RunUnary(
      context, request, response, env_, Role::kApprover, "DeleteCredential",
      [this, caller](const v1::DeleteCredentialRequest& req,
                     v1::DeleteCredentialResponse& resp) -> absl::Status {
        CB_ASSIGN_OR_RETURN(
            int64_t n,
            credentials_->Delete(req.provider(), req.profile(), caller));
        resp.set_versions_deleted(n);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::ValidateCredential(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Candidate values may be secrets: they are moved into wiped memory and
  // the message's copies cleared, as for every typed request.
  v1::ValidateCredentialRequest req;
  if (!StartRawCall(env_, context, reactor, "ValidateCredential", *request,
                    &req)) {
    return reactor;
  }
  if (req.values().empty() && req.from_file().empty()) {
    FinishWithAnswer(reactor, StoredValidationAnswer(req), response);
    return reactor;
  }
  FieldValues values = TakeValues(req.mutable_values());
  SecretBytes file = TakeString(req.mutable_from_file());
  absl::StatusOr<ValidateResult> result = credentials_->Validate(
      req.provider(), req.profile(), std::move(values), file);
  if (!result.ok()) {
    reactor->Finish(ToGrpcStatus(result.status()));
    return reactor;
  }
  v1::ValidateCredentialResponse resp;
  FillValidateResponse(*result, &resp);
  bool own = false;
  reactor->Finish(
      grpc::SerializationTraits<v1::ValidateCredentialResponse>::Serialize(
          resp, response, &own));
  return reactor;
}

grpc::ServerUnaryReactor* CredentialServiceImpl::ResolveRequirements(
    grpc::CallbackServerContext* context,
    const v1::ResolveRequirementsRequest* request,
    v1::ResolveRequirementsResponse* response) {
  return RunUnary(
      context, request, response, env_, Role::kApprover, "ResolveRequirements",
      [this](const v1::ResolveRequirementsRequest& req,
             v1::ResolveRequirementsResponse& resp) -> absl::Status {
        std::vector<std::string> targets(req.targets().begin(),
                                         req.targets().end());
        CB_ASSIGN_OR_RETURN(std::vector<Requirement> reqs,
                            credentials_->ResolveRequirements(
                                targets, req.profile(), req.resource()));
        for (const Requirement& r : reqs) {
          v1::Requirement* out = resp.add_requirements();
          out->set_provider(r.provider);
          out->set_profile(r.profile);
          out->set_configured(r.configured);
          out->set_readiness(ToProto(r.readiness));
          for (const auto& f : r.missing_fields) out->add_missing_fields(f);
          for (const auto& p : r.required_permissions) {
            out->add_required_permissions(p);
          }
          out->set_reason(r.reason);
          out->set_profile_source(r.profile_source);
          out->set_binding_note(r.binding_note);
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::ListGrants(
    grpc::CallbackServerContext* context, const v1::ListGrantsRequest* request,
    v1::ListGrantsResponse* response) {
  return RunUnary(
      context, request, response, env_, Role::kApprover, "ListGrants",
      [this](const v1::ListGrantsRequest& req,
             v1::ListGrantsResponse& resp) -> absl::Status {
        if (req.page_size() < 0) {
          return InvalidArgumentWithViolations(
              "invalid page_size",
              {{"page_size", "give 0 (default 100) to 1000"}});
        }
        ListGrantsOptions options;
        options.include_ended = req.include_ended();
        options.now = absl::Now();
        int limit =
            req.page_size() == 0 ? 100 : std::min(req.page_size(), 1000);
        options.limit = limit + 1;
        if (!req.page_token().empty()) {
          size_t sep = req.page_token().find('/');
          int64_t micros = 0;
          if (sep == std::string::npos ||
              !absl::SimpleAtoi(req.page_token().substr(0, sep), &micros)) {
            return InvalidArgumentWithViolations(
                "page_token is not valid",
                {{"page_token",
                  "pass the next_page_token of the previous response "
                  "unchanged, or leave it empty for the first page"}});
          }
          options.after_created_at = absl::FromUnixMicros(micros);
          options.after_grant_id = req.page_token().substr(sep + 1);
        }
        CB_ASSIGN_OR_RETURN(std::vector<GrantRecord> grants,
                            requests_->ListGrants(options));
        bool more = grants.size() > static_cast<size_t>(limit);
        if (more) grants.resize(limit);
        for (const GrantRecord& g : grants)
          ToProto(g, options.now, resp.add_grants());
        if (more) {
          resp.set_next_page_token(
              absl::StrCat(absl::ToUnixMicros(grants.back().created_at), "/",
                           grants.back().grant_id));
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::RevokeGrant(
    grpc::CallbackServerContext* context, const v1::RevokeGrantRequest* request,
    v1::RevokeGrantResponse* response) {
  Caller caller = CallerOf(env_, *context, "approver");
  return RunUnary(
      context, request, response, env_, Role::kApprover, "RevokeGrant",
      [this, caller](const v1::RevokeGrantRequest& req,
                     v1::RevokeGrantResponse&) {
        return requests_->RevokeGrant(req.grant_id(), req.reason(), caller);
      });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::ListStandingApprovals(
    grpc::CallbackServerContext* context,
    const v1::ListStandingApprovalsRequest* request,
    v1::ListStandingApprovalsResponse* response) {
  return RunUnary(
      context, request, response, env_, Role::kApprover,
      "ListStandingApprovals",
      [this](const v1::ListStandingApprovalsRequest& req,
             v1::ListStandingApprovalsResponse& resp) -> absl::Status {
        CB_ASSIGN_OR_RETURN(std::vector<StandingRecord> all,
                            requests_->ListStanding());
        absl::Time now = absl::Now();
        for (const StandingRecord& s : all) {
          if (!req.include_ended() && (s.revoked || s.expires_at <= now))
            continue;
          v1::StandingApproval* out = resp.add_approvals();
          out->set_id(s.id);
          out->set_provider(s.provider);
          out->set_profile(s.profile);
          out->set_action_pattern(s.action_pattern);
          ToProto(s.created_at, out->mutable_created_at());
          ToProto(s.expires_at, out->mutable_expires_at());
          out->set_revoked(s.revoked);
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::RevokeStandingApproval(
    grpc::CallbackServerContext* context,
    const v1::RevokeStandingApprovalRequest* request,
    v1::RevokeStandingApprovalResponse* response) {
  Caller caller = CallerOf(env_, *context, "approver");
  return RunUnary(context, request, response, env_, Role::kApprover,
                  "RevokeStandingApproval",
                  [this, caller](const v1::RevokeStandingApprovalRequest& req,
                                 v1::RevokeStandingApprovalResponse&) {
                    return requests_->RevokeStanding(req.id(), caller);
                  });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::ListAuditEvents(
    grpc::CallbackServerContext* context,
    const v1::ListAuditEventsRequest* request,
    v1::ListAuditEventsResponse* response) {
  return RunUnary(
      context, request, response, env_, Role::kApprover, "ListAuditEvents",
      [this](const v1::ListAuditEventsRequest& req,
             v1::ListAuditEventsResponse& resp) -> absl::Status {
        AuditQuery query;
        if (req.has_since()) query.since = FromProto(req.since());
        if (req.has_until()) query.until = FromProto(req.until());
        query.provider = req.provider();
        query.kind = req.kind();
        CB_ASSIGN_OR_RETURN(
            AuditPage page,
            env_.audit->List(query, req.page_size(), req.page_token()));
        for (const AuditRecord& e : page.events) {
          v1::AuditEvent* out = resp.add_events();
          out->set_sequence(e.sequence);
          ToProto(e.time, out->mutable_time());
          out->set_kind(e.kind);
          out->set_role(e.role);
          out->set_peer(e.peer);
          out->set_provider(e.provider);
          out->set_profile(e.profile);
          out->set_request_id(e.request_id);
          out->set_grant_id(e.grant_id);
          out->set_action(e.action);
          out->set_outcome(e.outcome);
          out->set_detail(e.detail);
          out->set_hash(e.hash);
          out->set_prev_hash(e.prev_hash);
        }
        resp.set_next_page_token(page.next_page_token);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::ListCredentialVersions(
    grpc::CallbackServerContext* context,
    const v1::ListCredentialVersionsRequest* request,
    v1::ListCredentialVersionsResponse* response) {
  return RunUnary(
      context, request, response, env_, Role::kApprover,
      "ListCredentialVersions",
      [this](const v1::ListCredentialVersionsRequest& req,
             v1::ListCredentialVersionsResponse& resp) -> absl::Status {
        CB_ASSIGN_OR_RETURN(
            CredentialHistory history,
            credentials_->ListVersions(req.provider(), req.profile()));
        resp.set_provider(history.provider);
        resp.set_profile(history.profile);
        for (const CredentialVersionInfo& v : history.versions) {
          v1::CredentialVersion* out = resp.add_versions();
          out->set_version(v.version);
          ToProto(v.created_at, out->mutable_created_at());
          out->set_fingerprint(v.fingerprint);
          out->set_current(v.current);
          if (v.rotation_period > absl::ZeroDuration()) {
            ToProto(v.rotation_period, out->mutable_rotation_period());
          }
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::RollbackCredential(
    grpc::CallbackServerContext* context,
    const v1::RollbackCredentialRequest* request,
    v1::RollbackCredentialResponse* response) {
  Caller caller = CallerOf(env_, *context, "approver");
  return RunUnary(
      context, request, response, env_, Role::kApprover, "RollbackCredential",
      [this, caller](const v1::RollbackCredentialRequest& req,
                     v1::RollbackCredentialResponse& resp) -> absl::Status {
        CB_ASSIGN_OR_RETURN(
            RollbackResult result,
            credentials_->Rollback(req.provider(), req.profile(), req.version(),
                                   caller));
        ToProto(result.credential, resp.mutable_credential());
        resp.set_restored_version(result.restored_version);
        for (const auto& f : result.findings) ToProto(f, resp.add_findings());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::SetDefaultProfile(
    grpc::CallbackServerContext* context,
    const v1::SetDefaultProfileRequest* request,
    v1::SetDefaultProfileResponse* response) {
  Caller caller = CallerOf(env_, *context, "approver");
  return RunUnary(
      context, request, response, env_, Role::kApprover, "SetDefaultProfile",
      [this, caller](const v1::SetDefaultProfileRequest& req,
                     v1::SetDefaultProfileResponse& resp) -> absl::Status {
        CB_ASSIGN_OR_RETURN(DefaultProfileChange change,
                            credentials_->SetDefaultProfile(
                                req.provider(), req.profile(), caller));
        resp.set_provider(change.provider);
        resp.set_profile(change.profile);
        resp.set_previous_profile(change.previous_profile);
        resp.set_configured(change.configured);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::ListBindings(
    grpc::CallbackServerContext* context,
    const v1::ListBindingsRequest* request,
    v1::ListBindingsResponse* response) {
  return RunUnary(
      context, request, response, env_, Role::kApprover, "ListBindings",
      [this](const v1::ListBindingsRequest& req,
             v1::ListBindingsResponse& resp) -> absl::Status {
        CB_ASSIGN_OR_RETURN(std::vector<BindingView> bindings,
                            credentials_->ListBindings(req.provider()));
        for (const BindingView& b : bindings) {
          v1::ResourceBinding* out = resp.add_bindings();
          out->set_resource(b.record.resource);
          out->set_provider(b.record.provider);
          out->set_profile(b.record.profile);
          out->set_fingerprint(b.record.fingerprint);
          out->set_credential_version(b.record.credential_version);
          out->set_grant_id(b.record.grant_id);
          ToProto(b.record.created_at, out->mutable_created_at());
          ToProto(b.record.updated_at, out->mutable_updated_at());
          switch (b.state) {
            case BindingState::kCurrent:
              out->set_state(v1::ResourceBinding::STATE_CURRENT);
              break;
            case BindingState::kRotated:
              out->set_state(v1::ResourceBinding::STATE_ROTATED);
              break;
            case BindingState::kProfileDeleted:
              out->set_state(v1::ResourceBinding::STATE_PROFILE_DELETED);
              break;
          }
          out->set_note(b.note);
        }
        return absl::OkStatus();
      });
}

}  // namespace credbroker
