#include "broker/rpc/locked_services.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "broker/common/status_macros.h"
#include "broker/core/credentials.h"
#include "broker/rpc/convert.h"
#include "broker/rpc/lock_service.h"
#include "broker/rpc/stream_reactor.h"
#include "broker/rpc/wire.h"
#include "common/errors.h"
#include "common/status.h"
#include "credbroker/v1/approval_service.pb.h"
#include "credbroker/v1/credential_service.pb.h"

namespace credbroker {
namespace {

constexpr size_t kMaxQueued = 64;

v1::NeedUpdate LockedUpdate(const std::string& need_id) {
  v1::NeedUpdate u;
  u.set_need_id(need_id);
  u.set_state(v1::REQUEST_STATE_PENDING_APPROVAL);
  u.set_message(kLockedNeedMessage);
  return u;
}

using RawSession = grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>;
using RawWriter = grpc::ServerWriteReactor<grpc::ByteBuffer>;

// The locked Session: every need gets LockedUpdate (one with invalid UTF-8
// is rejected alone, naming the fields, as when unlocked); the stream stays
// open until the unlock ends it (the agent then reconnects).
class LockedSessionReactor
    : public OutboxReactor<RawSession, grpc::ByteBuffer> {
 public:
  explicit LockedSessionReactor(StreamRegistry* streams)
      : OutboxReactor(streams, kMaxQueued) {
    Read(&request_);
  }
  void OnReadDone(bool ok) override {
    auto reaction = gate().InReaction();
    if (!ok) {
      outbox().CloseAfterDrain(grpc::Status::OK);
      return;
    }
    v1::SessionRequest message;
    absl::Status parsed = ParseAgentMessage(request_, &message);
    if (parsed.ok() && message.has_need()) {
      outbox().Push(SerializeWiped(LockedUpdate(message.need().need_id())));
    } else if (message.has_need() && !GetFieldViolations(parsed).empty()) {
      outbox().Push(
          SerializeWiped(RejectedNeed(message.need().need_id(), parsed)));
    } else if (!parsed.ok()) {
      outbox().CloseNow(ToGrpcStatus(parsed));
      return;
    }
    Read(&request_);
  }

 private:
  grpc::ByteBuffer request_;
};

// The locked RequestCredential: LockedUpdate, then open until the unlock.
class LockedRequestReactor : public OutboxReactor<RawWriter, grpc::ByteBuffer> {
 public:
  LockedRequestReactor(StreamRegistry* streams, const std::string& need_id)
      : OutboxReactor(streams, kMaxQueued) {
    outbox().Push(SerializeWiped(LockedUpdate(need_id)));
  }
};

bool ParseBuffer(const grpc::ByteBuffer& buffer,
                 google::protobuf::Message* message) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return message->ParseFromString(bytes);
}

absl::Status ListProviders(const ProviderRegistry& catalog,
                           const grpc::ByteBuffer&,
                           v1::ListProvidersResponse& resp) {
  for (const auto& p : catalog.providers())
    ToProto(p->spec(), resp.add_providers());
  return absl::OkStatus();
}

// The catalog's form for a provider: no current values (they need the key).
absl::Status ProviderForm(const ProviderRegistry& catalog,
                          const grpc::ByteBuffer& in,
                          v1::CredentialForm& resp) {
  v1::GetCredentialFormRequest req;
  if (!ParseBuffer(in, &req)) {
    return absl::InvalidArgumentError(
        "the request is not a GetCredentialFormRequest");
  }
  if (!req.request_id().empty())
    return absl::FailedPreconditionError(kLockedMessage);
  absl::StatusOr<const Provider*> provider = catalog.Get(req.provider());
  if (!provider.ok()) return provider.status();
  std::string profile = "default";
  if (!req.profile().empty()) {
    CB_ASSIGN_OR_RETURN(profile, CheckProfileName(req.profile()));
  }
  const ProviderSpec& spec = (*provider)->spec();
  resp.set_provider(spec.id);
  resp.set_profile(profile);
  resp.set_display_name(spec.display_name);
  for (const FieldSpec& f : spec.fields)
    ToProto(f, resp.add_fields()->mutable_spec());
  for (const auto& s : spec.how_to_get) resp.add_how_to_get(s);
  for (const auto& p : spec.required_permissions)
    resp.add_required_permissions(p);
  resp.set_oauth(spec.oauth);
  resp.add_notes("the store is locked: stored values show once it is unlocked");
  return absl::OkStatus();
}

// One catalog call: reads the request, answers, finishes.
class CatalogReactor : public grpc::ServerGenericBidiReactor {
 public:
  using Handler = std::function<absl::Status(const grpc::ByteBuffer& in,
                                             grpc::ByteBuffer& out)>;
  CatalogReactor(const absl::Status& allowed, Handler handler)
      : handler_(std::move(handler)) {
    if (!allowed.ok()) {
      Finish(ToGrpcStatus(allowed));
      return;
    }
    StartRead(&in_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "no request message"));
      return;
    }
    absl::Status done = handler_(in_, out_);
    if (!done.ok()) {
      Finish(ToGrpcStatus(done));
      return;
    }
    StartWriteAndFinish(&out_, grpc::WriteOptions(), grpc::Status::OK);
  }
  void OnDone() override { delete this; }

 private:
  Handler handler_;
  grpc::ByteBuffer in_;
  grpc::ByteBuffer out_;
};

template <typename Response>
CatalogReactor::Handler Answer(const ProviderRegistry* catalog,
                               absl::Status (*fn)(const ProviderRegistry&,
                                                  const grpc::ByteBuffer&,
                                                  Response&)) {
  return [catalog, fn](const grpc::ByteBuffer& in,
                       grpc::ByteBuffer& out) -> absl::Status {
    Response resp;
    CB_RETURN_IF_ERROR(fn(*catalog, in, resp));
    const std::string bytes = resp.SerializeAsString();
    grpc::Slice slice(bytes);
    out = grpc::ByteBuffer(&slice, 1);
    return absl::OkStatus();
  };
}

class LockedReactor : public grpc::ServerGenericBidiReactor {
 public:
  LockedReactor() {
    Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, kLockedMessage));
  }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
LockedBrokerService::Session(grpc::CallbackServerContext* context) {
  absl::Status allowed = Authorize(env_, *context, Role::kAgent, "Session");
  if (!allowed.ok()) return new FinishedReactor<RawSession>(allowed);
  return new LockedSessionReactor(streams_);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>*
LockedBrokerService::RequestCredential(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request) {
  absl::Status allowed =
      Authorize(env_, *context, Role::kAgent, "RequestCredential");
  if (!allowed.ok()) return new FinishedReactor<RawWriter>(allowed);
  v1::RequestCredentialRequest parsed;
  absl::Status valid = ParseAgentMessage(*request, &parsed);
  if (!valid.ok()) return new FinishedReactor<RawWriter>(valid);
  return new LockedRequestReactor(streams_, parsed.need().need_id());
}

grpc::ServerUnaryReactor* LockedBrokerService::ReleaseGrant(
    grpc::CallbackServerContext* context,
    const v1::ReleaseGrantRequest* /*request*/,
    v1::ReleaseGrantResponse* /*response*/) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!AuthorizeUnary(env_, context, reactor, Role::kAgent, "ReleaseGrant"))
    return reactor;
  reactor->Finish(
      grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, kLockedMessage));
  return reactor;
}

grpc::ServerGenericBidiReactor* LockedFallback::CreateReactor(
    grpc::GenericCallbackServerContext* context) {
  const std::string& method = context->method();
  if (method == "/credbroker.v1.CredentialService/ListProviders") {
    return new CatalogReactor(
        Authorize(env_, *context, Role::kApprover, "ListProviders"),
        Answer<v1::ListProvidersResponse>(catalog_, &ListProviders));
  }
  if (method == "/credbroker.v1.ApprovalService/GetCredentialForm") {
    return new CatalogReactor(
        Authorize(env_, *context, Role::kApprover, "GetCredentialForm"),
        Answer<v1::CredentialForm>(catalog_, &ProviderForm));
  }
  return new LockedReactor();
}

}  // namespace credbroker
