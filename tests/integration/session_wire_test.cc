// The Session and RequestCredential calls driven by a raw client that
// writes the bytes itself: bytes a generated client never sends (invalid
// UTF-8 in proto3 strings), which the protobuf parser would refuse as a
// whole message.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "client/credbroker/approval.h"
#include "common/status.h"
#include "credbroker/v1/credential_broker.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"

namespace credbroker {
namespace testing {
namespace {

constexpr absl::Duration kWait = absl::Seconds(15);

constexpr char kSessionMethod[] = "/credbroker.v1.CredentialBroker/Session";
constexpr char kRequestCredentialMethod[] =
    "/credbroker.v1.CredentialBroker/RequestCredential";

// One call of `method` (Session by default) over a generic stub; each step
// waits (bounded) for its completion. Not thread-safe.
class RawSession {
 public:
  RawSession(const std::string& address, const std::string& token,
             const std::string& method = kSessionMethod)
      : channel_(
            grpc::CreateChannel(address, grpc::InsecureChannelCredentials())),
        stub_(channel_) {
    ctx_.AddMetadata("authorization", "Bearer " + token);
    ctx_.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    call_ = stub_.PrepareCall(&ctx_, method, &cq_);
    call_->StartCall(this);
    started_ = Wait();
  }
  ~RawSession() {
    ctx_.TryCancel();
    if (call_ != nullptr && !finished_) {
      grpc::Status ignored;
      call_->Finish(&ignored, this);
      Wait();
    }
    cq_.Shutdown();
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
    }
  }

  bool started() const { return started_; }
  bool Write(const std::string& bytes) {
    grpc::Slice slice(bytes);
    grpc::ByteBuffer buffer(&slice, 1);
    call_->Write(buffer, this);
    return Wait();
  }
  bool WritesDone() {
    call_->WritesDone(this);
    return Wait();
  }
  // The next NeedUpdate; false when the stream ended.
  bool Read(v1::NeedUpdate* update) {
    grpc::ByteBuffer buffer;
    call_->Read(&buffer, this);
    if (!Wait()) return false;
    grpc::Slice flat;
    return buffer.DumpToSingleSlice(&flat).ok() &&
           update->ParseFromArray(flat.begin(), static_cast<int>(flat.size()));
  }
  absl::Status Finish() {
    grpc::Status status;
    call_->Finish(&status, this);
    Wait();
    finished_ = true;
    return FromGrpcStatus(status);
  }

 private:
  bool Wait() {
    void* tag;
    bool ok = false;
    auto next =
        cq_.AsyncNext(&tag, &ok, absl::ToChronoTime(absl::Now() + kWait));
    return next == grpc::CompletionQueue::GOT_EVENT && ok;
  }

  std::shared_ptr<grpc::Channel> channel_;
  grpc::GenericStub stub_;
  grpc::ClientContext ctx_;
  grpc::CompletionQueue cq_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
  bool started_ = false;
  bool finished_ = false;
};

// A SessionRequest carrying a need for AWS; "@@@" in `action` and in the
// region are replaced on the wire by `bad` (three bytes, so no length moves).
std::string NeedBytes(const std::string& need_id, const std::string& action,
                      const std::string& region,
                      const std::string& bad = "@@@") {
  v1::SessionRequest r;
  v1::CredentialNeeded* n = r.mutable_need();
  n->set_need_id(need_id);
  n->set_provider("aws");
  n->set_action(action);
  (*n->mutable_context())["region"] = region;
  return absl::StrReplaceAll(r.SerializeAsString(), {{"@@@", bad}});
}

// A RequestCredentialRequest carrying NeedBytes' need.
std::string RequestBytes(const std::string& need_id, const std::string& action,
                         const std::string& region,
                         const std::string& bad = "@@@") {
  v1::RequestCredentialRequest r;
  v1::CredentialNeeded* n = r.mutable_need();
  n->set_need_id(need_id);
  n->set_provider("aws");
  n->set_action(action);
  (*n->mutable_context())["region"] = region;
  return absl::StrReplaceAll(r.SerializeAsString(), {{"@@@", bad}});
}

class SessionWireTest : public BrokerTest {
 protected:
  SessionWireTest() { start_in_setup_ = false; }
  void SetUp() override {
    BrokerTest::SetUp();
    // The approver below runs in this process, which also holds the session.
    absl::Status started = broker_->Start({"--allow_self_approval"});
    ASSERT_TRUE(started.ok()) << started;
    client_ = broker_->Client();
    ASSERT_NE(client_, nullptr);
  }
};

TEST_F(SessionWireTest, InvalidUtf8InANeedIsRefusedAloneNamingTheFields) {
  ASSERT_TRUE(Put("aws", "",
                  {{"access_key_id", NewAwsKeyId()},
                   {"secret_access_key", NewAwsSecret()}})
                  .ok());
  RawSession session(broker_->address(), broker_->agent_token());
  ASSERT_TRUE(session.started());

  ASSERT_TRUE(session.Write(
      NeedBytes("n-bad", "deploy @@@ to prod", "us-@@@-1", "\xff\xfe\xc3")));
  v1::NeedUpdate rejected;
  ASSERT_TRUE(session.Read(&rejected));
  EXPECT_EQ(rejected.need_id(), "n-bad");
  EXPECT_EQ(rejected.state(), v1::REQUEST_STATE_REJECTED);
  EXPECT_EQ(rejected.error_code(), "INVALID_ARGUMENT");
  std::vector<std::string> fields;
  for (const v1::Finding& f : rejected.field_errors()) {
    fields.push_back(f.field());
    EXPECT_THAT(f.message(), ::testing::HasSubstr("invalid UTF-8"));
  }
  EXPECT_THAT(fields, ::testing::UnorderedElementsAre("need.action",
                                                      "need.context.region"));

  // The same stream carries the next need, to a grant.
  ASSERT_TRUE(
      session.Write(NeedBytes("n-good", "deploy to prod", "us-east-1")));
  v1::NeedUpdate pending;
  ASSERT_TRUE(session.Read(&pending));
  ASSERT_EQ(pending.state(), v1::REQUEST_STATE_PENDING_APPROVAL)
      << pending.reason();
  client::Options options;
  options.address = broker_->address();
  options.token = broker_->approver_token();
  auto approver = client::ApprovalClient::Connect(options);
  ASSERT_TRUE(approver.ok()) << approver.status();
  client::Approval approve;
  approve.request_id = pending.request_id();
  approve.scope = client::Scope::kOnce;
  auto approved = (*approver)->Approve(approve);
  ASSERT_TRUE(approved.ok()) << approved.status();
  v1::NeedUpdate granted;
  ASSERT_TRUE(session.Read(&granted));
  EXPECT_EQ(granted.need_id(), "n-good");
  EXPECT_EQ(granted.state(), v1::REQUEST_STATE_GRANTED);
  EXPECT_EQ(granted.grant().values().count("secret_access_key"), 1u);

  // Nothing the bad need said became a request.
  auto pending_list = (*approver)->ListPending();
  ASSERT_TRUE(pending_list.ok()) << pending_list.status();
  EXPECT_TRUE(pending_list->empty());
}

TEST_F(SessionWireTest, InvalidUtf8OutsideANeedEndsTheSessionNamingTheField) {
  RawSession session(broker_->address(), broker_->agent_token());
  ASSERT_TRUE(session.started());
  v1::SessionRequest hello;
  hello.mutable_hello()->set_session_key("s-@@@");
  ASSERT_TRUE(session.Write(absl::StrReplaceAll(hello.SerializeAsString(),
                                                {{"@@@", "\x80\x80\x80"}})));
  v1::NeedUpdate none;
  EXPECT_FALSE(session.Read(&none));
  absl::Status end = session.Finish();
  EXPECT_TRUE(absl::IsInvalidArgument(end)) << end;
  EXPECT_EQ(ViolationFields(end), "hello.session_key");

  RawSession garbage(broker_->address(), broker_->agent_token());
  ASSERT_TRUE(garbage.started());
  ASSERT_TRUE(garbage.Write("\x12\x7f not a message"));
  EXPECT_FALSE(garbage.Read(&none));
  absl::Status refused = garbage.Finish();
  EXPECT_TRUE(absl::IsInvalidArgument(refused)) << refused;
  EXPECT_THAT(std::string(refused.message()),
              ::testing::HasSubstr("SessionRequest"));
}

// RequestCredential sends its one request as a raw client would; the
// status of a refused call names the field holding invalid UTF-8.
absl::Status RawRequestCredential(const std::string& address,
                                  const std::string& token,
                                  const std::string& bytes) {
  RawSession call(address, token, kRequestCredentialMethod);
  if (!call.started() || !call.Write(bytes) || !call.WritesDone()) {
    return absl::UnknownError("the call could not be made");
  }
  v1::NeedUpdate none;
  if (call.Read(&none))
    return absl::UnknownError("an update came for an invalid request");
  return call.Finish();
}

TEST_F(SessionWireTest, RequestCredentialNamesInvalidUtf8Fields) {
  ASSERT_TRUE(Put("aws", "",
                  {{"access_key_id", NewAwsKeyId()},
                   {"secret_access_key", NewAwsSecret()}})
                  .ok());
  absl::Status bad_action =
      RawRequestCredential(broker_->address(), broker_->agent_token(),
                           RequestBytes("n-action", "deploy @@@ to prod",
                                        "us-east-1", "\xff\xfe\xc3"));
  EXPECT_TRUE(absl::IsInvalidArgument(bad_action)) << bad_action;
  EXPECT_EQ(ViolationFields(bad_action), "need.action");
  EXPECT_TRUE(HasViolation(bad_action, "need.action"));

  absl::Status bad_region = RawRequestCredential(
      broker_->address(), broker_->agent_token(),
      RequestBytes("n-region", "deploy to prod", "us-@@@-1", "\xc0\x80\x80"));
  EXPECT_TRUE(absl::IsInvalidArgument(bad_region)) << bad_region;
  EXPECT_EQ(ViolationFields(bad_region), "need.context.region");

  // The same raw path with valid bytes reaches the approver.
  RawSession good(broker_->address(), broker_->agent_token(),
                  kRequestCredentialMethod);
  ASSERT_TRUE(good.started());
  ASSERT_TRUE(
      good.Write(RequestBytes("n-good", "deploy to prod", "us-east-1")));
  ASSERT_TRUE(good.WritesDone());
  v1::NeedUpdate pending;
  ASSERT_TRUE(good.Read(&pending));
  EXPECT_EQ(pending.need_id(), "n-good");
  ASSERT_EQ(pending.state(), v1::REQUEST_STATE_PENDING_APPROVAL)
      << pending.reason();

  // Only the valid request became one.
  client::Options options;
  options.address = broker_->address();
  options.token = broker_->approver_token();
  auto approver = client::ApprovalClient::Connect(options);
  ASSERT_TRUE(approver.ok()) << approver.status();
  auto pending_list = (*approver)->ListPending();
  ASSERT_TRUE(pending_list.ok()) << pending_list.status();
  ASSERT_EQ(pending_list->size(), 1u);
  EXPECT_EQ((*pending_list)[0].request_id, pending.request_id());
}

// A broker started locked (a passphrase store, no passphrase given) keeps
// needs waiting, and refuses one with invalid UTF-8 alone, naming the
// fields, as when unlocked.
TEST_F(SessionWireTest, ALockedBrokerNamesInvalidUtf8Too) {
  ASSERT_EQ(mkdir((tmp_.path() + "/locked-logs").c_str(), 0700), 0);
  BrokerProcess locked(tmp_.path() + "/locked-data",
                       tmp_.path() + "/locked-logs");
  const std::string passphrase = tmp_.path() + "/passphrase";
  ASSERT_TRUE(WriteFileBytes(passphrase, RandomString(24) + "\n").ok());
  locked.set_stdin_path(passphrase);
  absl::Status made = locked.Start({"--passphrase_fd=0"});
  ASSERT_TRUE(made.ok()) << made << locked.stderr_text();
  ASSERT_TRUE(locked.Stop().ok());
  locked.set_stdin_path("/dev/null");
  absl::Status started = locked.Start({"--key_source=passphrase"});
  ASSERT_TRUE(started.ok()) << started << locked.stderr_text();

  RawSession session(locked.address(), locked.agent_token());
  ASSERT_TRUE(session.started());
  ASSERT_TRUE(session.Write(
      NeedBytes("n-bad", "deploy @@@ to prod", "us-east-1", "\xff\xfe\xc3")));
  v1::NeedUpdate rejected;
  ASSERT_TRUE(session.Read(&rejected));
  EXPECT_EQ(rejected.need_id(), "n-bad");
  EXPECT_EQ(rejected.state(), v1::REQUEST_STATE_REJECTED);
  ASSERT_EQ(rejected.field_errors_size(), 1);
  EXPECT_EQ(rejected.field_errors(0).field(), "need.action");
  // The session goes on: a good need waits for the unlock.
  ASSERT_TRUE(
      session.Write(NeedBytes("n-good", "deploy to prod", "us-east-1")));
  v1::NeedUpdate waiting;
  ASSERT_TRUE(session.Read(&waiting));
  EXPECT_EQ(waiting.need_id(), "n-good");
  EXPECT_EQ(waiting.state(), v1::REQUEST_STATE_PENDING_APPROVAL);
  EXPECT_THAT(waiting.message(), ::testing::HasSubstr("locked"));

  absl::Status bad = RawRequestCredential(
      locked.address(), locked.agent_token(),
      RequestBytes("n-region", "deploy to prod", "us-@@@-1", "\xc0\x80\x80"));
  EXPECT_TRUE(absl::IsInvalidArgument(bad)) << bad;
  EXPECT_EQ(ViolationFields(bad), "need.context.region");
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
