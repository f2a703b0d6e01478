#include "client/credbroker/agent.h"

#include <grpcpp/grpcpp.h>

#include <map>
#include <optional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/internal/channel.h"
#include "credbroker/v1/credential_broker.grpc.pb.h"

namespace credbroker {
namespace client {

bool IsDecided(v1::RequestState state) {
  switch (state) {
    case v1::REQUEST_STATE_GRANTED:
    case v1::REQUEST_STATE_DENIED:
    case v1::REQUEST_STATE_EXPIRED:
    case v1::REQUEST_STATE_CANCELLED:
    case v1::REQUEST_STATE_REVOKED:
    case v1::REQUEST_STATE_REJECTED:
      return true;
    default:
      return false;
  }
}

struct AgentSession::Impl {
  Options options;
  SessionOptions session;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::CredentialBroker::Stub> stub;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<v1::SessionRequest, v1::NeedUpdate>>
      stream;
  std::thread reader;

  // Serializes writes: the sync API allows one outstanding write.
  absl::Mutex write_mu;
  bool writes_done ABSL_GUARDED_BY(write_mu) = false;

  // Protects what the reader thread records.
  mutable absl::Mutex mu;
  std::map<std::string, std::vector<v1::NeedUpdate>> updates
      ABSL_GUARDED_BY(mu);
  // Per need: how many decided updates WaitFor has returned.
  std::map<std::string, size_t> consumed ABSL_GUARDED_BY(mu);
  std::optional<absl::Status> end ABSL_GUARDED_BY(mu);

  void ReadLoop() {
    v1::NeedUpdate update;
    while (stream->Read(&update)) {
      {
        absl::MutexLock lock(&mu);
        updates[update.need_id()].push_back(update);
      }
      if (session.on_update) session.on_update(update);
    }
    absl::Status status = internal::FromCallStatus(stream->Finish(), channel.get());
    {
      absl::MutexLock lock(&mu);
      end = status;
    }
    if (session.on_end) session.on_end(status);
  }

  absl::Status Write(const v1::SessionRequest& message) {
    absl::MutexLock lock(&write_mu);
    if (writes_done) {
      return absl::FailedPreconditionError("the session was closed");
    }
    if (stream->Write(message)) return absl::OkStatus();
    // The stream is broken: its status comes from the reader thread.
    absl::MutexLock l(&mu);
    auto ended = [this]()
                     ABSL_SHARED_LOCKS_REQUIRED(mu) { return end.has_value(); };
    mu.AwaitWithTimeout(absl::Condition(&ended), options.timeout);
    return absl::FailedPreconditionError(absl::StrCat(
        "the session stream has ended",
        end.has_value() ? absl::StrCat(": ", end->ToString()) : std::string()));
  }
};

AgentSession::AgentSession(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

AgentSession::~AgentSession() {
  if (impl_->reader.joinable()) {
    impl_->ctx.TryCancel();
    impl_->reader.join();
  }
}

absl::StatusOr<std::unique_ptr<AgentSession>> AgentSession::Connect(
    const Options& options, const std::string& session_key) {
  SessionOptions session;
  session.session_key = session_key;
  return Connect(options, std::move(session));
}

absl::StatusOr<std::unique_ptr<AgentSession>> AgentSession::Connect(
    const Options& options, SessionOptions session) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->session = std::move(session);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      internal::MakeChannel(options);
  if (!channel.ok()) return channel.status();
  impl->channel = *channel;
  // Bounded connection: the stream itself is long-lived and has no deadline.
  if (!impl->channel->WaitForConnected(
          std::chrono::system_clock::now() +
          absl::ToChronoMilliseconds(options.timeout))) {
    return absl::UnavailableError(absl::StrCat(
        "cannot reach the broker at ",
        options.address.empty() ? DefaultAddress() : options.address,
        " (is credbrokerd running? start it with scripts/run.sh)"));
  }
  impl->stub = v1::CredentialBroker::NewStub(impl->channel);
  internal::PrepareContext(impl->ctx, options.token, absl::InfiniteDuration());
  impl->stream = impl->stub->Session(&impl->ctx);
  v1::SessionRequest hello;
  hello.mutable_hello()->set_session_key(impl->session.session_key);
  hello.mutable_hello()->set_agent_name(impl->session.agent_name);
  if (!impl->stream->Write(hello)) {
    // Refused at once (a wrong token): the reason is the call's status.
    return internal::FromCallStatus(impl->stream->Finish(), impl->channel.get());
  }
  Impl* raw = impl.get();
  impl->reader = std::thread([raw] { raw->ReadLoop(); });
  return std::unique_ptr<AgentSession>(new AgentSession(std::move(impl)));
}

absl::Status AgentSession::SendNeed(const v1::CredentialNeeded& need) {
  v1::SessionRequest m;
  *m.mutable_need() = need;
  return impl_->Write(m);
}

absl::Status AgentSession::Cancel(const std::string& need_id) {
  v1::SessionRequest m;
  m.set_cancel_need_id(need_id);
  return impl_->Write(m);
}

absl::Status AgentSession::ReleaseGrant(const std::string& grant_id) {
  grpc::ClientContext ctx;
  internal::PrepareContext(ctx, impl_->options.token, impl_->options.timeout);
  v1::ReleaseGrantRequest request;
  request.set_grant_id(grant_id);
  v1::ReleaseGrantResponse response;
  grpc::Status s = impl_->stub->ReleaseGrant(&ctx, request, &response);
  if (!s.ok()) return internal::FromCallStatus(s, impl_->channel.get());
  return absl::OkStatus();
}

absl::StatusOr<v1::NeedUpdate> AgentSession::WaitFor(const std::string& need_id,
                                                     absl::Duration timeout) {
  Impl& impl = *impl_;
  absl::MutexLock lock(&impl.mu);
  // The index of the next decided update after those already returned.
  auto next =
      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl.mu) -> const v1::NeedUpdate* {
    auto it = impl.updates.find(need_id);
    if (it == impl.updates.end()) return nullptr;
    size_t seen = 0;
    size_t skip = impl.consumed[need_id];
    for (const v1::NeedUpdate& u : it->second) {
      if (!IsDecided(u.state())) continue;
      if (seen++ == skip) return &u;
    }
    return nullptr;
  };
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl.mu) {
    return next() != nullptr || impl.end.has_value();
  };
  impl.mu.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (const v1::NeedUpdate* u = next()) {
    ++impl.consumed[need_id];
    return *u;
  }
  if (impl.end.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the session ended before need ", need_id,
                     " was decided: ", impl.end->ToString()));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("no decision for need ", need_id, " within ",
                   absl::FormatDuration(timeout)));
}

absl::StatusOr<v1::NeedUpdate> AgentSession::WaitForState(
    const std::string& need_id, v1::RequestState state,
    absl::Duration timeout) {
  Impl& impl = *impl_;
  absl::MutexLock lock(&impl.mu);
  auto latest =
      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl.mu) -> const v1::NeedUpdate* {
    auto it = impl.updates.find(need_id);
    if (it == impl.updates.end()) return nullptr;
    for (auto u = it->second.rbegin(); u != it->second.rend(); ++u) {
      if (u->state() == state) return &*u;
    }
    return nullptr;
  };
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl.mu) {
    return latest() != nullptr || impl.end.has_value();
  };
  impl.mu.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (const v1::NeedUpdate* u = latest()) return *u;
  if (impl.end.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the session ended before need ", need_id, " reached ",
                     v1::RequestState_Name(state), ": ", impl.end->ToString()));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "need ", need_id, " did not reach ", v1::RequestState_Name(state),
      " within ", absl::FormatDuration(timeout)));
}

std::vector<v1::NeedUpdate> AgentSession::Updates(
    const std::string& need_id) const {
  absl::MutexLock lock(&impl_->mu);
  auto it = impl_->updates.find(need_id);
  if (it == impl_->updates.end()) return {};
  return it->second;
}

absl::Status AgentSession::Close() {
  Impl& impl = *impl_;
  {
    absl::MutexLock lock(&impl.write_mu);
    if (!impl.writes_done) {
      impl.writes_done = true;
      impl.stream->WritesDone();
    }
  }
  bool ended;
  {
    absl::MutexLock lock(&impl.mu);
    auto done = [&impl]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl.mu) {
      return impl.end.has_value();
    };
    ended =
        impl.mu.AwaitWithTimeout(absl::Condition(&done), impl.options.timeout);
  }
  if (!ended) impl.ctx.TryCancel();
  if (impl.reader.joinable()) impl.reader.join();
  absl::MutexLock lock(&impl.mu);
  return impl.end.value_or(absl::OkStatus());
}

void AgentSession::Abort() {
  impl_->ctx.TryCancel();
  if (impl_->reader.joinable()) impl_->reader.join();
}

std::optional<absl::Status> AgentSession::EndStatus() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->end;
}

namespace {

// A PENDING_APPROVAL without a request id comes from a locked broker: it
// recorded nothing, so the need is sent again once the broker is unlocked.
bool IsLockedAnswer(const v1::NeedUpdate& update) {
  return update.state() == v1::REQUEST_STATE_PENDING_APPROVAL && update.request_id().empty();
}

// One RequestCredential stream on `channel`, until it ends or `deadline`.
// `decided` gets the first decided update; `locked` whether the last update
// was a locked broker's.
grpc::Status RunRequestStream(const std::shared_ptr<grpc::Channel>& channel,
                              const Options& options,
                              const v1::RequestCredentialRequest& request, absl::Time deadline,
                              const std::function<void(const v1::NeedUpdate&)>& on_update,
                              std::optional<v1::NeedUpdate>& decided, bool& locked) {
  std::unique_ptr<v1::CredentialBroker::Stub> stub =
      v1::CredentialBroker::NewStub(channel);
  grpc::ClientContext ctx;
  internal::PrepareContext(ctx, options.token, deadline - absl::Now());
  std::unique_ptr<grpc::ClientReader<v1::NeedUpdate>> reader =
      stub->RequestCredential(&ctx, request);
  v1::NeedUpdate update;
  while (reader->Read(&update)) {
    locked = IsLockedAnswer(update);
    if (on_update) on_update(update);
    if (IsDecided(update.state()) && !decided.has_value()) decided = update;
  }
  return reader->Finish();
}

}  // namespace

absl::StatusOr<v1::NeedUpdate> RequestCredential(
    const Options& options, const v1::RequestCredentialRequest& request,
    absl::Duration timeout,
    const std::function<void(const v1::NeedUpdate&)>& on_update) {
  const absl::Time deadline = absl::Now() + timeout;
  bool locked = false;
  while (true) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = internal::MakeChannel(options);
    if (!channel.ok()) return channel.status();
    // After a locked broker's answer, its listeners come back unlocked.
    if (locked) (*channel)->WaitForConnected(absl::ToChronoTime(deadline));
    locked = false;
    std::optional<v1::NeedUpdate> decided;
    grpc::Status status =
        RunRequestStream(*channel, options, request, deadline, on_update, decided, locked);
    if (decided.has_value()) return *decided;
    if (locked && status.error_code() == grpc::StatusCode::UNAVAILABLE &&
        absl::Now() < deadline) {
      continue;  // Unlocked (or restarting): send the need again.
    }
    if (!status.ok()) return internal::FromCallStatus(status, channel->get());
    return absl::InternalError("the broker ended the request without a decision");
  }
}

}  // namespace client
}  // namespace credbroker
