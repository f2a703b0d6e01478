#include "broker/rpc/locked_services.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "broker/common/errors.h"
#include "broker/common/status_macros.h"
#include "broker/core/credentials.h"
#include "broker/rpc/convert.h"
#include "broker/rpc/lock_service.h"
#include "broker/rpc/outbox.h"
#include "broker/rpc/status.h"
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

// The write side shared by the two locked agent streams: an Outbox whose
// Finish is ordered after any StartRead issued (see `mu`), registered so
// that the unlock ends it.
template <typename Reactor>
class LockedStream {
 public:
  LockedStream(Reactor* reactor, StreamRegistry* streams) : streams_(streams) {
    outbox_ = std::make_shared<Outbox<v1::NeedUpdate>>(
        kMaxQueued,
        [reactor](const v1::NeedUpdate* m) { reactor->StartWrite(m); },
        [this, reactor](const grpc::Status& s) {
          {
            absl::MutexLock lock(&mu_);
            finished_ = true;
          }
          // Outside the lock: OnDone may run (and delete this) once it is
          // called.
          reactor->Finish(s);
        });
    id_ = streams_->Add([box = std::weak_ptr<Outbox<v1::NeedUpdate>>(outbox_)](
                            const grpc::Status& s) {
      if (auto b = box.lock()) b->CloseNow(s);
    });
  }
  Outbox<v1::NeedUpdate>& outbox() { return *outbox_; }
  // Runs `start_read` unless the stream has finished.
  template <typename Fn>
  void ReadIfOpen(Fn start_read) {
    absl::MutexLock lock(&mu_);
    if (!finished_) start_read();
  }
  void OnDone() {
    outbox_->OnDone();
    streams_->Remove(id_);
  }

 private:
  StreamRegistry* const streams_;
  std::shared_ptr<Outbox<v1::NeedUpdate>> outbox_;
  int64_t id_ = 0;
  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

class LockedSessionReactor
    : public grpc::ServerBidiReactor<v1::SessionRequest, v1::NeedUpdate> {
 public:
  LockedSessionReactor(StreamRegistry* streams, const absl::Status& allowed) {
    if (!allowed.ok()) {
      Finish(ToGrpcStatus(allowed));
      return;
    }
    // Ended at once when the streams were already ended (the unlock).
    stream_ =
        std::make_unique<LockedStream<LockedSessionReactor>>(this, streams);
    stream_->ReadIfOpen([this] { StartRead(&request_); });
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      stream_->outbox().CloseAfterDrain(grpc::Status::OK);
      return;
    }
    if (request_.has_need())
      stream_->outbox().Push(LockedUpdate(request_.need().need_id()));
    stream_->ReadIfOpen([this] { StartRead(&request_); });
  }
  void OnWriteDone(bool ok) override { stream_->outbox().OnWriteDone(ok); }
  void OnCancel() override {
    if (stream_)
      stream_->outbox().CloseNow(
          grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  }
  void OnDone() override {
    if (stream_) stream_->OnDone();
    delete this;
  }

 private:
  std::unique_ptr<LockedStream<LockedSessionReactor>> stream_;
  v1::SessionRequest request_;
};

class LockedRequestReactor : public grpc::ServerWriteReactor<v1::NeedUpdate> {
 public:
  LockedRequestReactor(StreamRegistry* streams, const absl::Status& allowed,
                       const std::string& need_id) {
    if (!allowed.ok()) {
      Finish(ToGrpcStatus(allowed));
      return;
    }
    stream_ =
        std::make_unique<LockedStream<LockedRequestReactor>>(this, streams);
    stream_->outbox().Push(LockedUpdate(need_id));
  }
  void OnWriteDone(bool ok) override { stream_->outbox().OnWriteDone(ok); }
  void OnCancel() override {
    if (stream_)
      stream_->outbox().CloseNow(
          grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  }
  void OnDone() override {
    if (stream_) stream_->OnDone();
    delete this;
  }

 private:
  std::unique_ptr<LockedStream<LockedRequestReactor>> stream_;
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

grpc::ServerBidiReactor<v1::SessionRequest, v1::NeedUpdate>*
LockedBrokerService::Session(grpc::CallbackServerContext* context) {
  return new LockedSessionReactor(
      streams_, Authorize(env_, *context, Role::kAgent, "Session"));
}

grpc::ServerWriteReactor<v1::NeedUpdate>*
LockedBrokerService::RequestCredential(
    grpc::CallbackServerContext* context,
    const v1::RequestCredentialRequest* request) {
  return new LockedRequestReactor(
      streams_, Authorize(env_, *context, Role::kAgent, "RequestCredential"),
      request->need().need_id());
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
