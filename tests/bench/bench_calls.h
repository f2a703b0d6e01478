// The calls credbroker_bench makes: the broker's unary calls and their
// baseline echo counterparts, and the wire sizes of each.
#ifndef CREDBROKER_TESTS_BENCH_BENCH_CALLS_H_
#define CREDBROKER_TESTS_BENCH_BENCH_CALLS_H_

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client/credbroker/agent.h"
#include "credbroker/bench/v1/echo.grpc.pb.h"
#include "credbroker/v1/credential_service.grpc.pb.h"
#include "tests/bench/bench_flags.h"
#include "tests/bench/bench_harness.h"
#include "tests/integration/broker_process.h"

namespace credbroker {
namespace benchmark {

inline std::string AwsKeyId() {
  return "AKIA" + RandomString(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
}

inline v1::PutCredentialRequest AwsPut(const std::string& profile) {
  v1::PutCredentialRequest r;
  r.set_provider("aws");
  r.set_profile(profile);
  (*r.mutable_values())["access_key_id"] = AwsKeyId();
  (*r.mutable_values())["secret_access_key"] = RandomString(40);
  return r;
}

class BrokerCalls {
 public:
  explicit BrokerCalls(const Target& t) : t_(t) {
    for (const auto& ch : t.channels)
      stubs_.push_back(v1::CredentialService::NewStub(ch));
  }
  v1::CredentialService::Stub* stub(int w) {
    return stubs_[w % stubs_.size()].get();
  }

  void Put(int w, const v1::PutCredentialRequest& req, Done done) {
    auto* s = stub(w);
    Unary<v1::PutCredentialRequest, v1::PutCredentialResponse>(
        t_, req,
        [s](auto* c, auto* q, auto* r, auto cb) {
          s->async()->PutCredential(c, q, r, std::move(cb));
        },
        std::move(done));
  }
  static v1::GetCredentialRequest GetRequest(const std::string& profile) {
    v1::GetCredentialRequest req;
    req.set_provider("aws");
    req.set_profile(profile);
    return req;
  }
  static v1::ValidateCredentialRequest ValidateRequest(
      const std::string& profile) {
    v1::ValidateCredentialRequest req;
    req.set_provider("aws");
    req.set_profile(profile);
    return req;
  }
  static v1::ListCredentialsRequest ListRequest() {
    v1::ListCredentialsRequest req;
    req.set_provider("aws");
    req.set_page_size(100);
    return req;
  }

  void Get(int w, const std::string& profile, Done done) {
    auto* s = stub(w);
    Unary<v1::GetCredentialRequest, v1::CredentialSummary>(
        t_, GetRequest(profile),
        [s](auto* c, auto* q, auto* r, auto cb) {
          s->async()->GetCredential(c, q, r, std::move(cb));
        },
        std::move(done));
  }
  void Validate(int w, const std::string& profile, Done done) {
    auto* s = stub(w);
    Unary<v1::ValidateCredentialRequest, v1::ValidateCredentialResponse>(
        t_, ValidateRequest(profile),
        [s](auto* c, auto* q, auto* r, auto cb) {
          s->async()->ValidateCredential(c, q, r, std::move(cb));
        },
        std::move(done));
  }
  void List(int w, Done done) {
    const v1::ListCredentialsRequest req = ListRequest();
    auto* s = stub(w);
    Unary<v1::ListCredentialsRequest, v1::ListCredentialsResponse>(
        t_, req,
        [s](auto* c, auto* q, auto* r, auto cb) {
          s->async()->ListCredentials(c, q, r, std::move(cb));
        },
        std::move(done));
  }

  // Stores profiles [from, to) with `concurrency` parallel PutCredential
  // calls, within `limit`. Returns the count stored.
  int64_t Fill(const std::string& prefix, int64_t from, int64_t to,
               int concurrency, absl::Duration limit, Stats* stats) {
    std::atomic<int64_t> next{from};
    *stats = RunLoop("PutCredential (fill)", concurrency, limit,
                     [&](int w, Done done) {
                       int64_t i = next.fetch_add(1);
                       if (i >= to) return false;
                       Put(w, AwsPut(absl::StrCat(prefix, i)), std::move(done));
                       return true;
                     });
    return from + stats->ops;
  }

 private:
  const Target& t_;
  std::vector<std::unique_ptr<v1::CredentialService::Stub>> stubs_;
};

// The serialized sizes of one broker call's request and response: the echo
// it is compared with carries as many bytes each way.
struct WireSizes {
  size_t request = 0;
  size_t response = 0;
};
template <typename Req, typename Resp, typename Call>
absl::StatusOr<WireSizes> SizesOf(const Target& t, const Req& req, Call call) {
  grpc::ClientContext ctx;
  t.Prepare(ctx);
  Resp resp;
  grpc::Status s = call(&ctx, req, &resp);
  if (!s.ok())
    return absl::InternalError("measuring a call's size: " + s.error_message());
  return WireSizes{req.ByteSizeLong(), resp.ByteSizeLong()};
}

// Stores aws/default (the profile needs use).
inline absl::Status PutDefault(BrokerCalls& calls) {
  absl::Notification put;
  grpc::Status status;
  calls.Put(0, AwsPut("default"), [&](const grpc::Status& s) {
    status = s;
    put.Notify();
  });
  put.WaitForNotification();
  return status.ok()
             ? absl::OkStatus()
             : absl::InternalError("PutCredential: " + status.error_message());
}

class EchoCalls {
 public:
  explicit EchoCalls(const Target& t) : t_(t) {
    for (const auto& ch : t.channels) stubs_.push_back(Echo::NewStub(ch));
    msg_.set_payload(std::string(64, 'x'));
  }
  // Requests of `sizes.request` bytes answered with `sizes.response` bytes.
  void MatchSizes(const WireSizes& sizes) {
    msg_.set_payload(std::string(sizes.request, 'x'));
    msg_.set_reply_bytes(static_cast<int32_t>(sizes.response));
    // The message's own framing: payload and reply_bytes tags.
    const size_t extra = msg_.ByteSizeLong() - sizes.request;
    msg_.set_payload(
        std::string(sizes.request > extra ? sizes.request - extra : 0, 'x'));
  }
  void Call(int w, Done done) {
    auto* s = stubs_[w % stubs_.size()].get();
    Unary<EchoMessage, EchoMessage>(
        t_, msg_,
        [s](auto* c, auto* q, auto* r, auto cb) {
          s->async()->Echo(c, q, r, std::move(cb));
        },
        std::move(done));
  }
  Stats Run(int concurrency, absl::Duration d) {
    return RunLoop("Echo (baseline)", concurrency, d, [this](int w, Done done) {
      Call(w, std::move(done));
      return true;
    });
  }

 private:
  const Target& t_;
  EchoMessage msg_;
  std::vector<std::unique_ptr<Echo::Stub>> stubs_;
};

// An agent's need for an aws credential, for `action`.
inline client::CredentialNeeded Need(const std::string& id,
                                     const std::string& action) {
  client::CredentialNeeded n;
  n.need_id = id;
  n.provider = "aws";
  n.action = action;
  n.context["region"] = "us-east-1";
  return n;
}

inline int Channels(int concurrency) {
  return std::max(1, std::min(concurrency, absl::GetFlag(FLAGS_channels)));
}

}  // namespace benchmark
}  // namespace credbroker

#endif  // CREDBROKER_TESTS_BENCH_BENCH_CALLS_H_
