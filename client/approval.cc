#include "client/credbroker/approval.h"

#include <grpcpp/grpcpp.h>

#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "client/internal/channel.h"
#include "client/internal/convert.h"
#include "credbroker/v1/approval_service.grpc.pb.h"

namespace credbroker {
namespace client {

struct Watcher::Impl {
  std::shared_ptr<grpc::Channel> channel;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReader<v1::ApprovalEvent>> stream;
  EventCallback on_event;
  EndCallback on_end;
  std::thread reader;
  absl::Mutex mu;
  std::optional<absl::Status> end ABSL_GUARDED_BY(mu);

  void ReadLoop() {
    v1::ApprovalEvent event;
    while (stream->Read(&event)) {
      if (on_event) on_event(internal::FromProto(event));
    }
    absl::Status status =
        internal::FromCallStatus(stream->Finish(), channel.get());
    {
      absl::MutexLock lock(&mu);
      end = status;
    }
    if (on_end) on_end(status);
  }
};

Watcher::Watcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Watcher::~Watcher() {
  impl_->ctx.TryCancel();
  if (impl_->reader.joinable()) impl_->reader.join();
}

void Watcher::Cancel() { impl_->ctx.TryCancel(); }

std::optional<absl::Status> Watcher::WaitForEnd(absl::Duration timeout) {
  absl::MutexLock lock(&impl_->mu);
  auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl_->mu) {
    return impl_->end.has_value();
  };
  impl_->mu.AwaitWithTimeout(absl::Condition(&ended), timeout);
  return impl_->end;
}

struct ApprovalClient::Impl {
  Options options;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::ApprovalService::Stub> stub;
};

ApprovalClient::ApprovalClient(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
ApprovalClient::~ApprovalClient() = default;

absl::StatusOr<std::unique_ptr<ApprovalClient>> ApprovalClient::Connect(
    const Options& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      internal::MakeChannel(options);
  if (!channel.ok()) return channel.status();
  impl->channel = *channel;
  impl->stub = v1::ApprovalService::NewStub(impl->channel);
  return std::unique_ptr<ApprovalClient>(new ApprovalClient(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<Watcher>> ApprovalClient::Watch(
    Watcher::EventCallback on_event, Watcher::EndCallback on_end) {
  if (!impl_->channel->WaitForConnected(
          std::chrono::system_clock::now() +
          absl::ToChronoMilliseconds(impl_->options.timeout))) {
    return absl::UnavailableError(absl::StrCat(
        "cannot reach the broker at ",
        impl_->options.address.empty() ? DefaultAddress()
                                       : impl_->options.address,
        " (is credbrokerd running? start it with scripts/run.sh)"));
  }
  auto w = std::make_unique<Watcher::Impl>();
  w->channel = impl_->channel;
  w->on_event = std::move(on_event);
  w->on_end = std::move(on_end);
  internal::PrepareContext(w->ctx, impl_->options.token,
                           absl::InfiniteDuration());
  w->stream = impl_->stub->WatchRequests(&w->ctx, v1::WatchRequestsRequest());
  Watcher::Impl* raw = w.get();
  w->reader = std::thread([raw] { raw->ReadLoop(); });
  return std::unique_ptr<Watcher>(new Watcher(std::move(w)));
}

absl::StatusOr<std::vector<ApprovalRequest>> ApprovalClient::ListPending() {
  grpc::ClientContext ctx;
  internal::PrepareContext(ctx, impl_->options.token, impl_->options.timeout);
  std::unique_ptr<grpc::ClientReader<v1::ApprovalEvent>> stream =
      impl_->stub->WatchRequests(&ctx, v1::WatchRequestsRequest());
  std::vector<ApprovalRequest> pending;
  v1::ApprovalEvent event;
  bool complete = false;
  while (stream->Read(&event)) {
    if (event.kind() == v1::ApprovalEvent::KIND_SNAPSHOT) {
      pending.push_back(internal::FromProto(event.request()));
    } else if (event.kind() == v1::ApprovalEvent::KIND_SNAPSHOT_DONE) {
      complete = true;
      ctx.TryCancel();
      break;
    }
  }
  grpc::Status status = stream->Finish();
  if (complete) return pending;
  if (!status.ok())
    return internal::FromCallStatus(status, impl_->channel.get());
  return absl::InternalError(
      "the watch ended before its snapshot was complete");
}

absl::StatusOr<CredentialForm> ApprovalClient::GetForm(const FormQuery& query) {
  grpc::ClientContext ctx;
  internal::PrepareContext(ctx, impl_->options.token, impl_->options.timeout);
  v1::GetCredentialFormRequest request;
  internal::ToProto(query, &request);
  v1::CredentialForm form;
  grpc::Status s = impl_->stub->GetCredentialForm(&ctx, request, &form);
  if (!s.ok()) return internal::FromCallStatus(s, impl_->channel.get());
  return internal::FromProto(form);
}

absl::StatusOr<ApprovalResult> ApprovalClient::Approve(
    const Approval& approval) {
  grpc::ClientContext ctx;
  internal::PrepareContext(ctx, impl_->options.token, impl_->options.timeout);
  v1::ApproveRequest request;
  internal::ToProto(approval, &request);
  v1::ApproveResponse response;
  grpc::Status s = impl_->stub->Approve(&ctx, request, &response);
  internal::WipeSecrets(request);
  if (!s.ok()) return internal::FromCallStatus(s, impl_->channel.get());
  return internal::FromProto(response);
}

absl::StatusOr<PasskeyChallenge> ApprovalClient::BeginPasskeyAssertion(
    const std::string& request_id) {
  grpc::ClientContext ctx;
  internal::PrepareContext(ctx, impl_->options.token, impl_->options.timeout);
  v1::BeginPasskeyAssertionRequest request;
  request.set_request_id(request_id);
  v1::PasskeyChallenge response;
  grpc::Status s = impl_->stub->BeginPasskeyAssertion(&ctx, request, &response);
  if (!s.ok()) return internal::FromCallStatus(s, impl_->channel.get());
  return internal::FromProto(response);
}

absl::Status ApprovalClient::Deny(const std::string& request_id,
                                  const std::string& reason) {
  grpc::ClientContext ctx;
  internal::PrepareContext(ctx, impl_->options.token, impl_->options.timeout);
  v1::DenyRequest request;
  request.set_request_id(request_id);
  request.set_reason(reason);
  v1::DenyResponse response;
  grpc::Status s = impl_->stub->Deny(&ctx, request, &response);
  if (!s.ok()) return internal::FromCallStatus(s, impl_->channel.get());
  return absl::OkStatus();
}

}  // namespace client
}  // namespace credbroker
