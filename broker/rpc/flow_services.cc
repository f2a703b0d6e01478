#include "broker/rpc/flow_services.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broker/common/status_macros.h"
#include "broker/crypto/crypto.h"
#include "broker/rpc/convert.h"
#include "broker/rpc/stream_reactor.h"
#include "broker/rpc/wire.h"
#include "common/errors.h"
#include "common/secret.h"

namespace credbroker {
namespace {

// Ends a stream's attachment to its session (0: it never attached), on the
// executor: the stream is done, its reactor about to go.
void DetachWhenDone(const RpcEnv& env, RequestManager* requests,
                    const std::string& session_key, int64_t attachment) {
  if (attachment == 0) return;
  env.executor->Schedule([requests, key = session_key, attachment] {
    requests->DetachSession(key, attachment);
  });
}

using RawBidiReactor =
    grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>;

// Session: the agent's long-lived bidirectional stream. Its messages are
// raw bytes: the reactor parses each SessionRequest itself, so that a need
// with invalid UTF-8 is refused alone (naming the field) instead of ending
// the stream, and serializes each NeedUpdate into memory that is wiped once
// written or dropped (a grant's values do not outlive the write).
class SessionReactor : public OutboxReactor<RawBidiReactor, grpc::ByteBuffer> {
 public:
  SessionReactor(RequestManager* requests, RpcEnv env, StreamRegistry* streams,
                 const grpc::CallbackServerContext& ctx)
      : OutboxReactor(streams, kMaxQueuedPerStream),
        requests_(requests),
        env_(env),
        caller_(CallerOf(env, ctx, "agent")) {
    Read(&request_);
  }

  void OnReadDone(bool ok) override {
    auto reaction = gate().InReaction();
    if (!ok) {
      // The agent closed its side (or went away): the session ends once
      // what is queued has been written.
      outbox().CloseAfterDrain(grpc::Status::OK);
      return;
    }
    grpc::ByteBuffer message = std::move(request_);
    request_.Clear();
    Schedule(env_.executor, [this, message = std::move(message)] {
      Parse(message);
      // The next message only after this one is handled: needs keep order.
      if (!outbox().closing()) Read(&request_);
    });
  }

 private:
  void OnStreamDone() override {
    DetachWhenDone(env_, requests_, session_key_, attachment_);
  }

  // False (the stream is closed with why) when the session is taken.
  bool Attach(std::string session_key) {
    session_key_ = std::move(session_key);
    absl::StatusOr<int64_t> attached = requests_->AttachSession(
        session_key_, caller_, [box = WeakOutbox()](const NeedUpdate& update) {
          if (auto b = box.lock()) {
            v1::NeedUpdate m;
            ToProto(update, &m);
            b->Push(SerializeWiped(m));
            WipeGrantValues(m);
          }
        });
    if (!attached.ok()) {
      outbox().CloseNow(ToGrpcStatus(attached.status()));
      return false;
    }
    attachment_ = *attached;
    return true;
  }

  // Parses one message and handles it. Invalid UTF-8 in a need refuses
  // that need alone; anywhere else, or bytes that are not a
  // SessionRequest, end the session with INVALID_ARGUMENT.
  void Parse(const grpc::ByteBuffer& bytes) {
    v1::SessionRequest message;
    absl::Status parsed = ParseAgentMessage(bytes, &message);
    if (parsed.ok()) {
      Handle(std::move(message));
    } else if (message.has_need() && !GetFieldViolations(parsed).empty()) {
      outbox().Push(
          SerializeWiped(RejectedNeed(message.need().need_id(), parsed)));
    } else {
      outbox().CloseNow(ToGrpcStatus(parsed));
    }
  }

  void Handle(v1::SessionRequest message) {
    switch (message.kind_case()) {
      case v1::SessionRequest::kHello:
        Hello(message.hello().session_key());
        return;
      case v1::SessionRequest::kNeed: {
        if (attachment_ == 0 && !Attach(absl::StrCat("s-", RandomHex(12))))
          return;
        absl::StatusOr<NeedUpdate> update = requests_->SubmitNeed(
            session_key_, caller_, FromProto(message.need()));
        // A refused need is answered on its own; the session goes on.
        if (!update.ok()) {
          outbox().Push(SerializeWiped(
              RejectedNeed(message.need().need_id(), update.status())));
        }
        return;
      }
      case v1::SessionRequest::kCancelNeedId: {
        if (attachment_ == 0) return;
        absl::Status s = requests_->CancelNeed(
            session_key_, message.cancel_need_id(), caller_);
        if (!s.ok() && !absl::IsNotFound(s)) outbox().CloseNow(ToGrpcStatus(s));
        return;
      }
      default:
        outbox().CloseNow(ToGrpcStatus(absl::InvalidArgumentError(
            "a session message carries hello, need or cancel_need_id")));
    }
  }

  void Hello(const std::string& key) {
    if (attachment_ != 0) {
      outbox().CloseNow(ToGrpcStatus(absl::FailedPreconditionError(
          "hello must be the first message of a session, and only once")));
      return;
    }
    if (key.size() > 128) {
      outbox().CloseNow(ToGrpcStatus(absl::InvalidArgumentError(
          "session_key must be at most 128 characters")));
      return;
    }
    Attach(key.empty() ? absl::StrCat("s-", RandomHex(12)) : key);
  }

  RequestManager* const requests_;
  const RpcEnv env_;
  const Caller caller_;
  grpc::ByteBuffer request_;
  // Set by executor tasks, which run one at a time per stream; read in
  // OnStreamDone, after the last task.
  std::string session_key_;
  int64_t attachment_ = 0;
};

// RequestCredential: one need as a server stream, ended after the need's
// terminal state. Each NeedUpdate is serialized into memory wiped once
// written or dropped, as Session's are.
class RequestCredentialReactor
    : public OutboxReactor<grpc::ServerWriteReactor<grpc::ByteBuffer>,
                           grpc::ByteBuffer> {
 public:
  RequestCredentialReactor(RequestManager* requests, RpcEnv env,
                           StreamRegistry* streams,
                           const grpc::CallbackServerContext& ctx,
                           const v1::RequestCredentialRequest& request)
      : OutboxReactor(streams, kMaxQueuedPerStream),
        requests_(requests),
        env_(env),
        session_key_(request.session_key().empty()
                         ? absl::StrCat("rc-", RandomHex(12))
                         : request.session_key()) {
    Schedule(env_.executor,
             [this, need = FromProto(request.need()),
              caller = CallerOf(env, ctx, "agent")] { Run(need, caller); });
  }

 private:
  void OnStreamDone() override {
    DetachWhenDone(env_, requests_, session_key_, attachment_);
  }

  void Run(const Need& need, const Caller& caller) {
    if (session_key_.size() > 128) {
      outbox().CloseNow(ToGrpcStatus(absl::InvalidArgumentError(
          "session_key must be at most 128 characters")));
      return;
    }
    absl::StatusOr<int64_t> attached = requests_->AttachSession(
        session_key_, caller,
        [box = WeakOutbox(), need_id = need.need_id](const NeedUpdate& update) {
          auto b = box.lock();
          if (!b || update.need_id != need_id) return;
          v1::NeedUpdate m;
          ToProto(update, &m);
          b->Push(SerializeWiped(m));
          WipeGrantValues(m);
          if (IsTerminal(update.state)) b->CloseAfterDrain(grpc::Status::OK);
        });
    if (!attached.ok()) {
      outbox().CloseNow(ToGrpcStatus(attached.status()));
      return;
    }
    attachment_ = *attached;
    absl::StatusOr<NeedUpdate> update =
        requests_->SubmitNeed(session_key_, caller, need);
    if (!update.ok()) outbox().CloseNow(ToGrpcStatus(update.status()));
  }

  RequestManager* const requests_;
  const RpcEnv env_;
  const std::string session_key_;
  int64_t attachment_ = 0;  // Written by the one task; read in OnStreamDone.
};

// The message a watcher gets for `event`.
v1::ApprovalEvent EventToProto(const WatchEvent& event) {
  v1::ApprovalEvent m;
  m.set_kind(static_cast<v1::ApprovalEvent::Kind>(event.kind));
  if (event.kind != WatchEventKind::kSnapshotDone) {
    ToProto(event.request, m.mutable_request());
  }
  if (event.credential.has_value()) {
    ToProto(*event.credential, m.mutable_credential());
  }
  m.set_message(event.message);
  return m;
}

// WatchRequests: a snapshot of pending requests, then live events.
class WatchReactor
    : public OutboxReactor<grpc::ServerWriteReactor<v1::ApprovalEvent>,
                           v1::ApprovalEvent> {
 public:
  WatchReactor(RequestManager* requests, RpcEnv env, StreamRegistry* streams)
      : OutboxReactor(streams, kMaxQueuedPerStream),
        requests_(requests),
        env_(env) {
    Schedule(env_.executor, [this] {
      watcher_ = requests_->Watch([box = WeakOutbox()](const WatchEvent& e) {
        auto b = box.lock();
        if (!b) return;
        // The snapshot is as large as what is pending; only live events
        // that pile up count toward the slow-reader bound.
        bool live = e.kind != WatchEventKind::kSnapshot &&
                    e.kind != WatchEventKind::kSnapshotDone;
        b->Push(EventToProto(e), live);
      });
    });
  }

 private:
  void OnStreamDone() override {
    if (watcher_ == 0) return;
    env_.executor->Schedule(
        [requests = requests_, id = watcher_] { requests->Unwatch(id); });
  }

  RequestManager* const requests_;
  const RpcEnv env_;
  int64_t watcher_ = 0;  // Written by the one task; read in OnStreamDone.
};

}  // namespace

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
BrokerServiceImpl::Session(grpc::CallbackServerContext* context) {
  absl::Status allowed = Authorize(env_, *context, Role::kAgent, "Session");
  if (!allowed.ok()) {
    AuditRefusal(env_, *context, "Session", allowed);
    return new FinishedReactor<RawBidiReactor>(allowed);
  }
  return new SessionReactor(requests_, env_, streams_, *context);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>*
BrokerServiceImpl::RequestCredential(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request) {
  using Refused = FinishedReactor<grpc::ServerWriteReactor<grpc::ByteBuffer>>;
  absl::Status allowed =
      Authorize(env_, *context, Role::kAgent, "RequestCredential");
  if (!allowed.ok()) {
    AuditRefusal(env_, *context, "RequestCredential", allowed);
    return new Refused(allowed);
  }
  // Parsed here, not by gRPC: its parser refuses invalid UTF-8 with no word
  // on which field holds it.
  v1::RequestCredentialRequest parsed;
  absl::Status valid = ParseAgentMessage(*request, &parsed);
  if (!valid.ok()) return new Refused(valid);
  return new RequestCredentialReactor(requests_, env_, streams_, *context,
                                      parsed);
}

grpc::ServerUnaryReactor* BrokerServiceImpl::ReleaseGrant(
    grpc::CallbackServerContext* context,
    const v1::ReleaseGrantRequest* request,
    v1::ReleaseGrantResponse* response) {
  Caller caller = CallerOf(env_, *context, "agent");
  return RunUnary(context, request, response, env_, Role::kAgent,
                  "ReleaseGrant",
                  [this, caller](const v1::ReleaseGrantRequest& req,
                                 v1::ReleaseGrantResponse&) {
                    return requests_->ReleaseGrant(req.grant_id(), caller);
                  });
}

grpc::ServerWriteReactor<v1::ApprovalEvent>* ApprovalServiceImpl::WatchRequests(
    grpc::CallbackServerContext* context, const v1::WatchRequestsRequest*) {
  absl::Status allowed =
      Authorize(env_, *context, Role::kApprover, "WatchRequests");
  if (!allowed.ok()) {
    AuditRefusal(env_, *context, "WatchRequests", allowed);
    return new FinishedReactor<grpc::ServerWriteReactor<v1::ApprovalEvent>>(
        allowed);
  }
  return new WatchReactor(requests_, env_, streams_);
}

grpc::ServerUnaryReactor* ApprovalServiceImpl::GetCredentialForm(
    grpc::CallbackServerContext* context,
    const v1::GetCredentialFormRequest* request, v1::CredentialForm* response) {
  return RunUnary(
      context, request, response, env_, Role::kApprover, "GetCredentialForm",
      [this](const v1::GetCredentialFormRequest& req,
             v1::CredentialForm& resp) -> absl::Status {
        CB_ASSIGN_OR_RETURN(Form form,
                            requests_->GetForm(req.request_id(), req.provider(),
                                               req.profile()));
        resp.set_provider(form.provider->id);
        resp.set_profile(form.profile);
        resp.set_display_name(form.provider->display_name);
        for (const FormField& f : form.fields) {
          v1::FormField* out = resp.add_fields();
          ToProto(f.spec, out->mutable_spec());
          out->set_current_value(f.current_value);
          out->set_is_set(f.is_set);
        }
        for (const auto& s : form.provider->how_to_get) resp.add_how_to_get(s);
        for (const auto& p : form.provider->required_permissions) {
          resp.add_required_permissions(p);
        }
        if (form.request.has_value())
          ToProto(*form.request, resp.mutable_request());
        resp.set_oauth(form.provider->oauth);
        for (const auto& n : form.notes) resp.add_notes(n);
        return absl::OkStatus();
      });
}

absl::Status ApprovalServiceImpl::CheckFactor(const SecretBytes& pin,
                                              const v1::ApproveRequest& req,
                                              const Caller& caller) {
  if (env_.passkeys == nullptr) return env_.pin->Check(pin, caller, "Approve");
  PasskeyAssertionInput assertion;
  if (req.has_passkey()) {
    assertion.credential_id = req.passkey().credential_id();
    assertion.client_data_json = req.passkey().client_data_json();
    assertion.authenticator_data = req.passkey().authenticator_data();
    assertion.signature = req.passkey().signature();
  }
  return env_.passkeys->CheckDecision(
      pin, req.has_passkey() ? &assertion : nullptr, "Approve",
      ApprovePurpose(req.request_id()), caller);
}

grpc::ServerUnaryReactor* ApprovalServiceImpl::Approve(
    grpc::CallbackServerContext* context, const v1::ApproveRequest* request,
    v1::ApproveResponse* response) {
  Caller caller = CallerOf(env_, *context, "approver");
  return RunUnary(
      context, request, response, env_, Role::kApprover, "Approve",
      [this, caller](const v1::ApproveRequest& req,
                     v1::ApproveResponse& resp) -> absl::Status {
        std::string pin_text = req.pin();
        SecretBytes pin = SecretBytes::TakeFrom(pin_text);
        WipeString(*const_cast<v1::ApproveRequest&>(req).mutable_pin());
        // The agent's own processes are refused before the factor is
        // checked: they must not spend the person's PIN attempts.
        CB_RETURN_IF_ERROR(requests_->CheckMayDecide(req.request_id(), caller));
        if (env_.pin != nullptr)
          CB_RETURN_IF_ERROR(CheckFactor(pin, req, caller));
        ApproveInput input;
        input.request_id = req.request_id();
        input.values =
            TakeValues(const_cast<v1::ApproveRequest&>(req).mutable_values());
        input.generate.assign(req.generate().begin(), req.generate().end());
        input.scope = FromProto(req.scope());
        if (req.has_ttl()) input.ttl = FromProto(req.ttl());
        input.action_pattern = req.action_pattern();
        CB_ASSIGN_OR_RETURN(ApproveResult result,
                            requests_->Approve(std::move(input), caller));
        resp.set_grant_id(result.grant_id);
        resp.set_standing_approval_id(result.standing_id);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ApprovalServiceImpl::Deny(
    grpc::CallbackServerContext* context, const v1::DenyRequest* request,
    v1::DenyResponse* response) {
  Caller caller = CallerOf(env_, *context, "approver");
  return RunUnary(
      context, request, response, env_, Role::kApprover, "Deny",
      [this, caller](const v1::DenyRequest& req, v1::DenyResponse&) {
        return requests_->Deny(req.request_id(), req.reason(), caller);
      });
}

}  // namespace credbroker
