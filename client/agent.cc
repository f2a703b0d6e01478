#include "client/credbroker/agent.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <map>
#include <optional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/internal/channel.h"
#include "client/internal/convert.h"
#include "credbroker/v1/credential_broker.grpc.pb.h"

namespace credbroker {
namespace client {

bool IsDecided(RequestState state) {
  switch (state) {
    case RequestState::kGranted:
    case RequestState::kDenied:
    case RequestState::kExpired:
    case RequestState::kCancelled:
    case RequestState::kRevoked:
    case RequestState::kRejected:
      return true;
    default:
      return false;
  }
}

namespace {

// A PENDING_APPROVAL without a request id comes from a locked broker: it
// recorded nothing, so the need is sent again once the broker is unlocked.
bool IsLockedAnswer(const NeedUpdate& update) {
  return update.state == RequestState::kPendingApproval &&
         update.request_id.empty();
}

// The plain update of a message read from a stream, whose grant values are
// then wiped.
NeedUpdate TakeUpdate(v1::NeedUpdate& m) {
  NeedUpdate update = internal::FromProto(m);
  internal::WipeSecrets(m);
  return update;
}

// How the broker ends streams when it restarts its listeners (an unlock,
// a lock, a rekey), unlike a shutdown: UNAVAILABLE, "... reconnect now ...".
bool AskedToReconnect(const absl::Status& status) {
  return absl::IsUnavailable(status) &&
         absl::StrContains(status.message(), "reconnect now");
}

// Whether a stream ended because the broker is restarting its listeners:
// it asked to reconnect, or (`retrying`: a stream opened again after that,
// with no answer yet) it landed on the old server shutting down (CANCELLED)
// or found none listening yet (UNAVAILABLE).
bool EndedByRestart(const absl::Status& status, bool retrying) {
  return AskedToReconnect(status) ||
         (retrying &&
          (absl::IsUnavailable(status) || absl::IsCancelled(status)));
}

// Streams in a row that a restarting broker may end before answering, with
// no update in between, before giving up: the old listeners may take a few
// seconds to stop (their last calls end).
constexpr int kMaxReconnects = 30;

}  // namespace

struct AgentSession::Impl {
  using Stream = grpc::ClientReaderWriter<v1::SessionRequest, v1::NeedUpdate>;
  Options options;
  SessionOptions session;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::CredentialBroker::Stub> stub;
  std::thread reader;

  // Serializes writes (the sync API allows one outstanding write) and the
  // replacement of the stream by the reader thread when it reconnects.
  absl::Mutex write_mu;
  std::unique_ptr<grpc::ClientContext> ctx ABSL_GUARDED_BY(write_mu);
  std::unique_ptr<Stream> stream ABSL_GUARDED_BY(write_mu);
  bool writes_done ABSL_GUARDED_BY(write_mu) = false;
  // Cancelled (Abort, the destructor): never reconnect.
  bool cancelled ABSL_GUARDED_BY(write_mu) = false;

  // Protects what the reader thread records.
  mutable absl::Mutex mu;
  std::map<std::string, std::vector<NeedUpdate>> updates ABSL_GUARDED_BY(mu);
  // Per need: how many decided updates WaitFor has returned.
  std::map<std::string, size_t> consumed ABSL_GUARDED_BY(mu);
  std::optional<absl::Status> end ABSL_GUARDED_BY(mu);
  // Needs sent and not decided yet, sent again after a reconnection.
  std::map<std::string, CredentialNeeded> open_needs ABSL_GUARDED_BY(mu);
  // Open needs whose last answer came from a locked broker.
  std::map<std::string, bool> locked_answer ABSL_GUARDED_BY(mu);
  int64_t reconnections ABSL_GUARDED_BY(mu) = 0;

  // A new stream with the hello. Holds write_mu.
  bool OpenStream() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu) {
    stream.reset();
    ctx = std::make_unique<grpc::ClientContext>();
    internal::PrepareContext(*ctx, options.token, absl::InfiniteDuration());
    stream = stub->Session(ctx.get());
    v1::SessionRequest hello;
    hello.mutable_hello()->set_session_key(session.session_key);
    hello.mutable_hello()->set_agent_name(session.agent_name);
    return stream->Write(hello);
  }

  void CancelStream() {
    absl::MutexLock lock(&write_mu);
    cancelled = true;
    if (ctx) ctx->TryCancel();
  }

  void Record(const NeedUpdate& update) {
    absl::MutexLock lock(&mu);
    updates[update.need_id].push_back(update);
    if (IsDecided(update.state)) {
      open_needs.erase(update.need_id);
      locked_answer.erase(update.need_id);
    } else if (open_needs.count(update.need_id) > 0) {
      locked_answer[update.need_id] = IsLockedAnswer(update);
    }
  }

  // After an UNAVAILABLE end (the broker restarting its listeners at an
  // unlock or a lock): whether sending the open needs again is safe. With
  // the same session key the broker re-attaches them; without one only
  // needs a locked broker answered, since it recorded nothing.
  // `retrying`: as for EndedByRestart.
  bool ShouldReconnect(const absl::Status& status, bool retrying) {
    if (!EndedByRestart(status, retrying)) return false;
    absl::MutexLock lock(&mu);
    if (open_needs.empty()) return false;
    if (!session.session_key.empty()) return true;
    for (const auto& [need_id, need] : open_needs) {
      auto it = locked_answer.find(need_id);
      if (it == locked_answer.end() || !it->second) return false;
    }
    return true;
  }

  // Opens a new stream and sends the open needs again.
  bool Reconnect() {
    if (!channel->WaitForConnected(
            std::chrono::system_clock::now() +
            absl::ToChronoMilliseconds(options.timeout))) {
      return false;
    }
    std::vector<CredentialNeeded> needs;
    {
      absl::MutexLock lock(&mu);
      for (const auto& [need_id, need] : open_needs) needs.push_back(need);
      ++reconnections;
    }
    absl::MutexLock lock(&write_mu);
    if (writes_done || cancelled || !OpenStream())
      return !writes_done && !cancelled;
    for (const CredentialNeeded& need : needs) {
      v1::SessionRequest m;
      internal::ToProto(need, m.mutable_need());
      if (!stream->Write(m)) break;  // Its end is read below.
    }
    return true;
  }

  void ReadLoop() {
    int attempts = 0;
    while (true) {
      Stream* current;
      {
        absl::MutexLock lock(&write_mu);
        current = stream.get();
      }
      v1::NeedUpdate message;
      while (current->Read(&message)) {
        attempts = 0;
        const NeedUpdate update = TakeUpdate(message);
        Record(update);
        if (session.on_update) session.on_update(update);
      }
      absl::Status status =
          internal::FromCallStatus(current->Finish(), channel.get());
      if (ShouldReconnect(status, attempts > 0) && attempts < kMaxReconnects) {
        // A restart takes a moment: a stream refused at once is tried again.
        absl::SleepFor(
            std::min(absl::Milliseconds(100) * attempts++, absl::Seconds(1)));
        if (Reconnect()) continue;
      }
      {
        absl::MutexLock lock(&mu);
        end = status;
      }
      if (session.on_end) session.on_end(status);
      return;
    }
  }

  absl::Status Write(const v1::SessionRequest& message) {
    int64_t seen;
    {
      absl::MutexLock lock(&mu);
      seen = reconnections;
    }
    {
      absl::MutexLock lock(&write_mu);
      if (writes_done)
        return absl::FailedPreconditionError("the session was closed");
      if (stream->Write(message)) return absl::OkStatus();
    }
    // The stream is broken: it ends, or the reader reconnects (and sends
    // the open needs again).
    absl::MutexLock l(&mu);
    auto moved_on = [this, seen]() ABSL_SHARED_LOCKS_REQUIRED(mu) {
      return end.has_value() || reconnections != seen;
    };
    mu.AwaitWithTimeout(absl::Condition(&moved_on), options.timeout);
    if (!end.has_value() && reconnections != seen) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(
        "the session stream has ended",
        end.has_value() ? absl::StrCat(": ", end->ToString()) : std::string()));
  }
};

AgentSession::AgentSession(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

AgentSession::~AgentSession() {
  if (impl_->reader.joinable()) {
    impl_->CancelStream();
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
  {
    absl::MutexLock lock(&impl->write_mu);
    if (!impl->OpenStream()) {
      // Refused at once (a wrong token): the reason is the call's status.
      return internal::FromCallStatus(impl->stream->Finish(),
                                      impl->channel.get());
    }
  }
  Impl* raw = impl.get();
  impl->reader = std::thread([raw] { raw->ReadLoop(); });
  return std::unique_ptr<AgentSession>(new AgentSession(std::move(impl)));
}

absl::Status AgentSession::SendNeed(const CredentialNeeded& need) {
  {
    absl::MutexLock lock(&impl_->mu);
    impl_->open_needs[need.need_id] = need;
  }
  v1::SessionRequest m;
  internal::ToProto(need, m.mutable_need());
  return impl_->Write(m);
}

absl::Status AgentSession::Cancel(const std::string& need_id) {
  {
    absl::MutexLock lock(&impl_->mu);
    impl_->open_needs.erase(need_id);
  }
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

absl::StatusOr<NeedUpdate> AgentSession::WaitFor(const std::string& need_id,
                                                 absl::Duration timeout) {
  Impl& impl = *impl_;
  absl::MutexLock lock(&impl.mu);
  // The index of the next decided update after those already returned.
  auto next = [&]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl.mu) -> const NeedUpdate* {
    auto it = impl.updates.find(need_id);
    if (it == impl.updates.end()) return nullptr;
    size_t seen = 0;
    size_t skip = impl.consumed[need_id];
    for (const NeedUpdate& u : it->second) {
      if (!IsDecided(u.state)) continue;
      if (seen++ == skip) return &u;
    }
    return nullptr;
  };
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl.mu) {
    return next() != nullptr || impl.end.has_value();
  };
  impl.mu.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (const NeedUpdate* u = next()) {
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

absl::StatusOr<NeedUpdate> AgentSession::WaitForState(
    const std::string& need_id, RequestState state, absl::Duration timeout) {
  Impl& impl = *impl_;
  absl::MutexLock lock(&impl.mu);
  auto latest =
      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl.mu) -> const NeedUpdate* {
    auto it = impl.updates.find(need_id);
    if (it == impl.updates.end()) return nullptr;
    for (auto u = it->second.rbegin(); u != it->second.rend(); ++u) {
      if (u->state == state) return &*u;
    }
    return nullptr;
  };
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl.mu) {
    return latest() != nullptr || impl.end.has_value();
  };
  impl.mu.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (const NeedUpdate* u = latest()) return *u;
  if (impl.end.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the session ended before need ", need_id, " reached ",
                     RequestStateName(state), ": ", impl.end->ToString()));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("need ", need_id, " did not reach ", RequestStateName(state),
                   " within ", absl::FormatDuration(timeout)));
}

std::vector<NeedUpdate> AgentSession::Updates(
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
  if (!ended) impl.CancelStream();
  if (impl.reader.joinable()) impl.reader.join();
  absl::MutexLock lock(&impl.mu);
  return impl.end.value_or(absl::OkStatus());
}

void AgentSession::Abort() {
  impl_->CancelStream();
  if (impl_->reader.joinable()) impl_->reader.join();
}

std::optional<absl::Status> AgentSession::EndStatus() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->end;
}

namespace {

// One RequestCredential stream on `channel`, until it ends or `deadline`.
// `decided` gets the first decided update; `locked` whether the last update
// was a locked broker's.
grpc::Status RunRequestStream(
    const std::shared_ptr<grpc::Channel>& channel, const Options& options,
    const v1::RequestCredentialRequest& request, absl::Time deadline,
    const std::function<void(const NeedUpdate&)>& on_update,
    std::optional<NeedUpdate>& decided, bool& locked) {
  std::unique_ptr<v1::CredentialBroker::Stub> stub =
      v1::CredentialBroker::NewStub(channel);
  grpc::ClientContext ctx;
  internal::PrepareContext(ctx, options.token, deadline - absl::Now());
  std::unique_ptr<grpc::ClientReader<v1::NeedUpdate>> reader =
      stub->RequestCredential(&ctx, request);
  v1::NeedUpdate message;
  while (reader->Read(&message)) {
    NeedUpdate update = TakeUpdate(message);
    locked = IsLockedAnswer(update);
    if (on_update) on_update(update);
    if (IsDecided(update.state) && !decided.has_value()) {
      decided = std::move(update);
    }
  }
  return reader->Finish();
}

}  // namespace

absl::StatusOr<NeedUpdate> RequestCredential(
    const Options& options, const CredentialNeeded& need,
    const std::string& session_key, absl::Duration timeout,
    const std::function<void(const NeedUpdate&)>& on_update) {
  v1::RequestCredentialRequest request;
  internal::ToProto(need, request.mutable_need());
  request.set_session_key(session_key);
  const absl::Time deadline = absl::Now() + timeout;
  // The last answer came from a locked broker (kept across a stream that
  // ended before any answer: the old listeners finishing their last calls).
  bool locked = false;
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        internal::MakeChannel(options);
    if (!channel.ok()) return channel.status();
    if (attempt > 0) {
      // The listeners come back unlocked in a moment.
      absl::SleepFor(
          std::min(absl::Milliseconds(100) * attempt, absl::Seconds(1)));
      (*channel)->WaitForConnected(absl::ToChronoTime(deadline));
    }
    std::optional<NeedUpdate> decided;
    bool answered = false;
    auto counted = [&](const NeedUpdate& u) {
      answered = true;
      if (on_update) on_update(u);
    };
    grpc::Status status = RunRequestStream(*channel, options, request, deadline,
                                           counted, decided, locked);
    if (decided.has_value()) return *decided;
    const absl::Status ended = internal::FromCallStatus(status, channel->get());
    if (locked && EndedByRestart(ended, attempt > 0 && !answered) &&
        attempt < kMaxReconnects && absl::Now() < deadline) {
      continue;  // Unlocked: send the need again.
    }
    if (!status.ok()) return internal::FromCallStatus(status, channel->get());
    return absl::InternalError(
        "the broker ended the request without a decision");
  }
}

}  // namespace client
}  // namespace credbroker
