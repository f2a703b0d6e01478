// credbroker_bench's unary scenario: ValidateCredential, GetCredential,
// ListCredentials and PutCredential against the baseline Echo, at each
// --concurrency.
#include <atomic>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "credbroker/v1/credential_service.grpc.pb.h"
#include "tests/bench/bench_calls.h"
#include "tests/bench/bench_harness.h"
#include "tests/bench/bench_scenarios.h"

namespace credbroker {
namespace benchmark {

absl::Status UnaryScenario() {
  Servers servers;
  if (absl::Status s = servers.Start(); !s.ok()) return s;
  const absl::Duration d = absl::GetFlag(FLAGS_duration);
  Table table(
      "Unary calls vs the echo baseline (each broker row against the echo row "
      "above it)",
      kLoadHeader);
  {
    servers.broker_target.Connect(1);
    BrokerCalls broker(servers.broker_target);
    Stats fill;
    if (broker.Fill("p", 0, 100, 8, absl::Minutes(2), &fill) < 100) {
      return absl::InternalError("could not store 100 profiles: " +
                                 fill.first_error);
    }
  }
  for (int c : ParseInts(absl::GetFlag(FLAGS_concurrency))) {
    servers.broker_target.Connect(Channels(c));
    servers.echo_target.Connect(Channels(c));
    BrokerCalls broker(servers.broker_target);
    EchoCalls echo(servers.echo_target);
    auto run = [&](const std::string& name,
                   const absl::StatusOr<WireSizes>& sizes,
                   const Issue& issue) -> absl::Status {
      if (!Wanted(absl::GetFlag(FLAGS_calls), name)) return absl::OkStatus();
      if (!sizes.ok()) return sizes.status();
      echo.MatchSizes(*sizes);
      auto [base, st] = MedianPair(
          servers, [&] { return echo.Run(c, d); },
          [&] { return RunLoop(name, c, d, issue); });
      base.name = absl::StrCat("Echo (baseline, ", sizes->request, " B → ",
                               sizes->response, " B)");
      table.Add(LoadCells(base, nullptr));
      table.Add(LoadCells(st, &base));
      return absl::OkStatus();
    };
    auto* stub = broker.stub(0);
    std::atomic<uint64_t> n{0};
    if (absl::Status s = run(
            "ValidateCredential",
            SizesOf<v1::ValidateCredentialRequest,
                    v1::ValidateCredentialResponse>(
                servers.broker_target, BrokerCalls::ValidateRequest("p0"),
                [&](auto* ctx, const auto& q, auto* r) {
                  return stub->ValidateCredential(ctx, q, r);
                }),
            [&](int w, Done done) {
              broker.Validate(w, absl::StrCat("p", n++ % 100), std::move(done));
              return true;
            });
        !s.ok()) {
      return s;
    }
    if (absl::Status s =
            run("GetCredential",
                SizesOf<v1::GetCredentialRequest, v1::CredentialSummary>(
                    servers.broker_target, BrokerCalls::GetRequest("p0"),
                    [&](auto* ctx, const auto& q, auto* r) {
                      return stub->GetCredential(ctx, q, r);
                    }),
                [&](int w, Done done) {
                  broker.Get(w, absl::StrCat("p", n++ % 100), std::move(done));
                  return true;
                });
        !s.ok()) {
      return s;
    }
    if (absl::Status s = run(
            "ListCredentials (100)",
            SizesOf<v1::ListCredentialsRequest, v1::ListCredentialsResponse>(
                servers.broker_target, BrokerCalls::ListRequest(),
                [&](auto* ctx, const auto& q, auto* r) {
                  return stub->ListCredentials(ctx, q, r);
                }),
            [&](int w, Done done) {
              broker.List(w, std::move(done));
              return true;
            });
        !s.ok()) {
      return s;
    }
    if (absl::Status s = run(
            "PutCredential",
            SizesOf<v1::PutCredentialRequest, v1::PutCredentialResponse>(
                servers.broker_target, AwsPut("put-size"),
                [&](auto* ctx, const auto& q, auto* r) {
                  return stub->PutCredential(ctx, q, r);
                }),
            [&](int w, Done done) {
              broker.Put(w, AwsPut(absl::StrCat("put", w)), std::move(done));
              return true;
            });
        !s.ok()) {
      return s;
    }
  }
  table.Print();
  return absl::OkStatus();
}

}  // namespace benchmark
}  // namespace credbroker
