// Authentication and roles, health and server reflection on the real
// credbrokerd, through generated stubs (no client library). The reflection
// stubs come from Debian's reflection.proto, compiled for this test only.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "credbroker/v1/approval_service.grpc.pb.h"
#include "credbroker/v1/credential_broker.grpc.pb.h"
#include "credbroker/v1/credential_service.grpc.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/descriptor_database.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"

namespace credbroker {
namespace testing {
namespace {

namespace refl = grpc::reflection::v1alpha;

class AuthReflectionTest : public BrokerTest {
 protected:
  void SetUp() override {
    BrokerTest::SetUp();
    if (HasFatalFailure()) return;
    channel_ = grpc::CreateChannel(broker_->address(),
                                   grpc::InsecureChannelCredentials());
  }

  void TearDown() override {
    // An open connection would make the broker's stop wait out its grace.
    channel_.reset();
    BrokerTest::TearDown();
  }

  // A context with a deadline and, unless empty, `authorization: <value>`.
  static std::unique_ptr<grpc::ClientContext> Context(
      const std::string& authorization) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(10));
    if (!authorization.empty())
      ctx->AddMetadata("authorization", authorization);
    return ctx;
  }

  grpc::StatusCode ListCredentialsCode(const std::string& authorization) {
    auto stub = v1::CredentialService::NewStub(channel_);
    auto ctx = Context(authorization);
    v1::ListCredentialsResponse resp;
    return stub->ListCredentials(ctx.get(), v1::ListCredentialsRequest(), &resp)
        .error_code();
  }

  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(AuthReflectionTest, CredentialServiceNeedsTheApproverToken) {
  const std::string approver = broker_->approver_token();
  const std::string agent = broker_->agent_token();
  ASSERT_GE(approver.size(), 32u);
  ASSERT_GE(agent.size(), 32u);
  EXPECT_NE(approver, agent);

  EXPECT_EQ(ListCredentialsCode(""), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ListCredentialsCode("Bearer " + RandomString(43)),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ListCredentialsCode("Basic " + approver),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ListCredentialsCode("Bearer " + agent),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ListCredentialsCode("Bearer " + approver), grpc::StatusCode::OK);

  // Every CredentialService method refuses the agent, PutCredential included,
  // and nothing is stored.
  auto stub = v1::CredentialService::NewStub(channel_);
  {
    auto ctx = Context("Bearer " + agent);
    v1::PutCredentialRequest req;
    req.set_provider("aws");
    (*req.mutable_values())["access_key_id"] = kAwsExampleKeyId;
    (*req.mutable_values())["secret_access_key"] = kAwsExampleSecret;
    v1::PutCredentialResponse resp;
    grpc::Status s = stub->PutCredential(ctx.get(), req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_FALSE(s.error_message().empty());
  }
  {
    auto ctx = Context("");
    v1::GetCredentialRequest req;
    req.set_provider("aws");
    v1::CredentialSummary resp;
    EXPECT_EQ(stub->GetCredential(ctx.get(), req, &resp).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    auto ctx = Context("Bearer " + agent);
    v1::ListProvidersResponse resp;
    EXPECT_EQ(stub->ListProviders(ctx.get(), v1::ListProvidersRequest(), &resp)
                  .error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  absl::StatusOr<client::CredentialPage> list = client_->ListCredentials();
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE(list->credentials.empty());

  // The client library maps the same codes.
  auto no_token = broker_->ClientWithToken("");
  EXPECT_EQ(no_token->ListProviders().status().code(),
            absl::StatusCode::kUnauthenticated);
  auto bogus = broker_->ClientWithToken(RandomString(43));
  EXPECT_EQ(bogus->ListProviders().status().code(),
            absl::StatusCode::kUnauthenticated);
  auto as_agent = broker_->ClientWithToken(agent);
  EXPECT_EQ(as_agent->ListProviders().status().code(),
            absl::StatusCode::kPermissionDenied);
}

// GetCredential and ValidateCredential handle their own bytes
// (broker/rpc/credential_service.h): bytes that are not their request are
// INVALID_ARGUMENT, once the caller is known; well-formed requests sent as
// bytes are answered as from the generated stub.
TEST_F(AuthReflectionTest, GetAndValidateReadTheirRequestBytesThemselves) {
  client::CredentialInput put;
  put.provider = "aws";
  put.values["access_key_id"] = SecretBytes(kAwsExampleKeyId);
  put.values["secret_access_key"] = SecretBytes(kAwsExampleSecret);
  ASSERT_TRUE(client_->PutCredential(put).ok());

  grpc::GenericStub generic(channel_);
  // Returns the status; the answer's bytes in `out`.
  auto call = [&](const std::string& method, const std::string& authorization,
                  const std::string& bytes, std::string* out) {
    auto ctx = Context(authorization);
    grpc::Slice slice(bytes);
    grpc::ByteBuffer in(&slice, 1);
    grpc::ByteBuffer answer;
    grpc::Status status;
    absl::Notification done;
    generic.UnaryCall(ctx.get(), "/credbroker.v1.CredentialService/" + method,
                      grpc::StubOptions(), &in, &answer, [&](grpc::Status s) {
                        status = std::move(s);
                        done.Notify();
                      });
    done.WaitForNotification();
    out->clear();
    std::vector<grpc::Slice> slices;
    if (status.ok() && answer.Dump(&slices).ok()) {
      for (const grpc::Slice& s : slices) {
        out->append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
    }
    return status;
  };
  const std::string approver = "Bearer " + broker_->approver_token();
  // A field 1 (provider) whose length runs past the end.
  const std::string garbage(
      "\x0a\x7f"
      "aws",
      5);
  std::string bytes;
  for (const char* method : {"GetCredential", "ValidateCredential"}) {
    EXPECT_EQ(call(method, "", garbage, &bytes).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    grpc::Status refused = call(method, approver, garbage, &bytes);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << method;
    EXPECT_TRUE(
        absl::StrContains(refused.error_message(),
                          absl::StrCat("credbroker.v1.", method, "Request")))
        << refused.error_message();
  }

  v1::GetCredentialRequest get;
  get.set_provider("aws");
  grpc::Status ok =
      call("GetCredential", approver, get.SerializeAsString(), &bytes);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  v1::CredentialSummary summary;
  ASSERT_TRUE(summary.ParseFromString(bytes));
  EXPECT_EQ(summary.provider(), "aws");
  EXPECT_EQ(summary.profile(), "default");
  EXPECT_EQ(summary.version(), 1);
  EXPECT_FALSE(absl::StrContains(bytes, kAwsExampleSecret));

  // What is stored, twice (the second from the kept bytes), then candidates.
  v1::ValidateCredentialRequest stored;
  stored.set_provider("aws");
  for (int i = 0; i < 2; ++i) {
    ok = call("ValidateCredential", approver, stored.SerializeAsString(),
              &bytes);
    ASSERT_TRUE(ok.ok()) << ok.error_message();
    v1::ValidateCredentialResponse diagnosis;
    ASSERT_TRUE(diagnosis.ParseFromString(bytes));
    EXPECT_TRUE(diagnosis.valid());
    EXPECT_EQ(diagnosis.profile(), "default");
    EXPECT_FALSE(diagnosis.required_permissions().empty());
    EXPECT_FALSE(diagnosis.manual_checks().empty());
    EXPECT_FALSE(absl::StrContains(bytes, kAwsExampleSecret));
  }
  v1::ValidateCredentialRequest candidate;
  candidate.set_provider("aws");
  (*candidate.mutable_values())["access_key_id"] = "not-a-key-id";
  ok = call("ValidateCredential", approver, candidate.SerializeAsString(),
            &bytes);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  v1::ValidateCredentialResponse diagnosis;
  ASSERT_TRUE(diagnosis.ParseFromString(bytes));
  EXPECT_FALSE(diagnosis.valid());
  EXPECT_FALSE(diagnosis.findings().empty());
}

TEST_F(AuthReflectionTest, FlowServicesCheckRolesFirst) {
  const std::string approver = broker_->approver_token();
  const std::string agent = broker_->agent_token();
  auto broker_stub = v1::CredentialBroker::NewStub(channel_);
  auto release = [&](const std::string& auth) {
    auto ctx = Context(auth);
    v1::ReleaseGrantRequest req;
    req.set_grant_id("g-1");
    v1::ReleaseGrantResponse resp;
    return broker_stub->ReleaseGrant(ctx.get(), req, &resp).error_code();
  };
  EXPECT_EQ(release(""), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(release("Bearer " + approver), grpc::StatusCode::PERMISSION_DENIED);
  // Past the role check: the grant does not exist.
  EXPECT_EQ(release("Bearer " + agent), grpc::StatusCode::NOT_FOUND);

  auto approval_stub = v1::ApprovalService::NewStub(channel_);
  auto deny = [&](const std::string& auth) {
    auto ctx = Context(auth);
    v1::DenyRequest req;
    req.set_request_id("r-1");
    v1::DenyResponse resp;
    return approval_stub->Deny(ctx.get(), req, &resp).error_code();
  };
  EXPECT_EQ(deny(""), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(deny("Bearer " + agent), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(deny("Bearer " + approver), grpc::StatusCode::NOT_FOUND);

  // A server stream ends with the same status.
  auto ctx = Context("Bearer " + approver);
  v1::RequestCredentialRequest req;
  req.mutable_need()->set_provider("aws");
  auto reader = broker_stub->RequestCredential(ctx.get(), req);
  v1::NeedUpdate update;
  EXPECT_FALSE(reader->Read(&update));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

// The services the broker serves, by the names health checks use.
const char* const kServedServices[] = {"credbroker.v1.CredentialService",
                                       "credbroker.v1.ApprovalService",
                                       "credbroker.v1.CredentialBroker"};

TEST_F(AuthReflectionTest,
       HealthAnswersForTheServerAndEachServiceWithoutAToken) {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  std::vector<std::string> names = {""};
  names.insert(names.end(), std::begin(kServedServices),
               std::end(kServedServices));
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    auto ctx = Context("");
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(name);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s = stub->Check(ctx.get(), req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
  // A name the broker does not serve is unknown to it.
  for (const char* name : {"credbroker.v1.NoSuchService", "credbroker.v1"}) {
    SCOPED_TRACE(name);
    auto ctx = Context("");
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(name);
    grpc::health::v1::HealthCheckResponse resp;
    EXPECT_EQ(stub->Check(ctx.get(), req, &resp).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
}

TEST_F(AuthReflectionTest, HealthWatchersSeeEveryServiceStopServingAtShutdown) {
  using grpc::health::v1::HealthCheckResponse;
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  struct Watch {
    std::string name;
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> reader;
  };
  std::vector<Watch> watches;
  std::vector<std::string> names = {""};
  names.insert(names.end(), std::begin(kServedServices),
               std::end(kServedServices));
  for (const std::string& name : names) {
    Watch w{name, Context(""), nullptr};
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(name);
    w.reader = stub->Watch(w.ctx.get(), req);
    HealthCheckResponse first;
    ASSERT_TRUE(w.reader->Read(&first)) << name;
    EXPECT_EQ(first.status(), HealthCheckResponse::SERVING) << name;
    watches.push_back(std::move(w));
  }

  ASSERT_EQ(kill(broker_->pid(), SIGTERM), 0);
  for (Watch& w : watches) {
    HealthCheckResponse next;
    ASSERT_TRUE(w.reader->Read(&next)) << w.name;
    EXPECT_EQ(next.status(), HealthCheckResponse::NOT_SERVING) << w.name;
    w.ctx->TryCancel();
    w.reader->Finish();
  }
  watches.clear();
  channel_.reset();
  absl::StatusOr<int> code = broker_->Stop();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << broker_->stderr_text();
}

// One reflection exchange on a fresh stream.
refl::ServerReflectionResponse Reflect(
    const std::shared_ptr<grpc::Channel>& channel,
    const refl::ServerReflectionRequest& req) {
  auto stub = refl::ServerReflection::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->ServerReflectionInfo(&ctx);
  refl::ServerReflectionResponse resp;
  EXPECT_TRUE(stream->Write(req));
  stream->WritesDone();
  EXPECT_TRUE(stream->Read(&resp));
  refl::ServerReflectionResponse extra;
  while (stream->Read(&extra)) {
  }
  grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp;
}

TEST_F(AuthReflectionTest, ReflectionListsAndDescribesEveryService) {
  refl::ServerReflectionRequest list;
  list.set_list_services("*");
  refl::ServerReflectionResponse listed = Reflect(channel_, list);
  ASSERT_TRUE(listed.has_list_services_response())
      << (listed.has_error_response() ? listed.error_response().error_message()
                                      : "");
  std::set<std::string> services;
  for (const auto& s : listed.list_services_response().service())
    services.insert(s.name());
  const std::vector<std::string> want = {
      "credbroker.v1.CredentialService", "credbroker.v1.CredentialBroker",
      "credbroker.v1.ApprovalService", "grpc.health.v1.Health",
      "grpc.reflection.v1alpha.ServerReflection"};
  for (const std::string& name : want)
    EXPECT_TRUE(services.count(name)) << name;

  // Describe each as grpcurl would: the file defining the symbol and its
  // dependencies, enough to build the service's descriptor.
  for (const std::string& name : want) {
    SCOPED_TRACE(name);
    refl::ServerReflectionRequest req;
    req.set_file_containing_symbol(name);
    refl::ServerReflectionResponse resp = Reflect(channel_, req);
    ASSERT_TRUE(resp.has_file_descriptor_response())
        << (resp.has_error_response() ? resp.error_response().error_message()
                                      : "");
    google::protobuf::SimpleDescriptorDatabase db;
    for (const std::string& bytes :
         resp.file_descriptor_response().file_descriptor_proto()) {
      google::protobuf::FileDescriptorProto file;
      ASSERT_TRUE(file.ParseFromString(bytes));
      db.Add(file);
    }
    // Well-known imports may be left out when the client is expected to
    // know them; give the database the ones this binary has.
    for (const char* f : {"google/protobuf/duration.proto",
                          "google/protobuf/timestamp.proto"}) {
      google::protobuf::FileDescriptorProto have;
      if (db.FindFileByName(f, &have)) continue;
      const google::protobuf::FileDescriptor* fd =
          google::protobuf::DescriptorPool::generated_pool()->FindFileByName(f);
      ASSERT_NE(fd, nullptr);
      google::protobuf::FileDescriptorProto p;
      fd->CopyTo(&p);
      db.Add(p);
    }
    google::protobuf::DescriptorPool pool(&db);
    const google::protobuf::ServiceDescriptor* service =
        pool.FindServiceByName(name);
    ASSERT_NE(service, nullptr);
    EXPECT_GT(service->method_count(), 0);
  }

  // Methods of CredentialService and their input types resolve.
  refl::ServerReflectionRequest method;
  method.set_file_containing_symbol(
      "credbroker.v1.CredentialService.PutCredential");
  refl::ServerReflectionResponse resp = Reflect(channel_, method);
  EXPECT_TRUE(resp.has_file_descriptor_response());
  refl::ServerReflectionRequest message;
  message.set_file_containing_symbol("credbroker.v1.CredentialSummary");
  resp = Reflect(channel_, message);
  EXPECT_TRUE(resp.has_file_descriptor_response());
  refl::ServerReflectionRequest unknown;
  unknown.set_file_containing_symbol("no.such.Service");
  resp = Reflect(channel_, unknown);
  ASSERT_TRUE(resp.has_error_response());
  EXPECT_EQ(resp.error_response().error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
