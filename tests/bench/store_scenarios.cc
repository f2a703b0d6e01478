// credbroker_bench's store scenarios: durable (PutCredential against raw
// SQLite inserts in the same directory) and growth (GetCredential at
// --growth_concurrency, and its p99 as stored profiles grow).
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "credbroker/v1/credential_service.grpc.pb.h"
#include "tests/bench/bench_calls.h"
#include "tests/bench/bench_harness.h"
#include "tests/bench/bench_scenarios.h"
#include "tests/integration/broker_process.h"

namespace credbroker {
namespace benchmark {

absl::Status DurableScenario() {
  Servers servers;
  if (absl::Status s = servers.Start(); !s.ok()) return s;
  const absl::Duration d = absl::GetFlag(FLAGS_duration);
  Table table(
      "Durable writes: PutCredential vs raw SQLite inserts (WAL, "
      "synchronous=FULL, one "
      "transaction per row, same directory)",
      {"writer", "callers", "rows/s", "p50", "p99", "Put vs SQLite"});
  // Raw SQLite: a row shaped like a stored credential version.
  const std::string db_path = servers.data_dir() + "/raw-bench.db";
  sqlite3* db = nullptr;
  if (sqlite3_open(db_path.c_str(), &db) != SQLITE_OK) {
    return absl::InternalError("sqlite3_open failed");
  }
  auto exec = [&](const char* sql) {
    return sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  };
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=FULL");
  exec(
      "CREATE TABLE t (id INTEGER PRIMARY KEY, provider TEXT, profile TEXT, "
      "version INTEGER, "
      "nonce BLOB, ciphertext BLOB, created_at INTEGER)");
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db,
                     "INSERT INTO t (provider, profile, version, nonce, "
                     "ciphertext, created_at) "
                     "VALUES ('aws', ?1, ?2, ?3, ?4, ?5)",
                     -1, &stmt, nullptr);
  std::vector<int64_t> lat;
  const std::string nonce = RandomString(24), blob = RandomString(160);
  const int64_t start = NowNs(), end = start + absl::ToInt64Nanoseconds(d);
  for (int64_t i = 0; NowNs() < end; ++i) {
    const int64_t t0 = NowNs();
    const std::string profile = absl::StrCat("p", i);
    sqlite3_bind_text(stmt, 1, profile.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 2, i);
    sqlite3_bind_blob(stmt, 3, nonce.data(), static_cast<int>(nonce.size()),
                      SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 4, blob.data(), static_cast<int>(blob.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, t0);
    if (sqlite3_step(stmt) != SQLITE_DONE)
      return absl::InternalError(sqlite3_errmsg(db));
    sqlite3_reset(stmt);
    lat.push_back(NowNs() - t0);
  }
  const double raw_secs = (NowNs() - start) / 1e9;
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  Stats raw = FromSamples("", lat);
  const double raw_rate = raw.ops / raw_secs;
  table.Add({"raw SQLite INSERT", "1", Fmt(raw_rate), Us(raw.PercentileUs(0.5)),
             Us(raw.PercentileUs(0.99)), "-"});
  for (int c : {1, 16}) {
    servers.broker_target.Connect(Channels(c));
    BrokerCalls broker(servers.broker_target);
    Stats put = RunLoop("PutCredential", c, d, [&](int w, Done done) {
      broker.Put(w, AwsPut(absl::StrCat("d", w)), std::move(done));
      return true;
    });
    table.Add(
        {put.errors == 0 ? "PutCredential"
                         : "PutCredential (errors: " + put.first_error + ")",
         absl::StrCat(c), Fmt(put.ops_per_sec()), Us(put.PercentileUs(0.5)),
         Us(put.PercentileUs(0.99)), Ratio(put.ops_per_sec(), raw_rate)});
  }
  table.Print();
  return absl::OkStatus();
}

absl::Status GrowthScenario() {
  Servers servers;
  if (absl::Status s = servers.Start(); !s.ok()) return s;
  const absl::Duration d = absl::GetFlag(FLAGS_duration);
  Table conc("Growth: GetCredential by concurrency (100 stored profiles)",
             kLoadHeader);
  servers.broker_target.Connect(absl::GetFlag(FLAGS_channels));
  servers.echo_target.Connect(absl::GetFlag(FLAGS_channels));
  BrokerCalls broker(servers.broker_target);
  EchoCalls echo(servers.echo_target);
  Stats fill;
  int64_t stored = broker.Fill("g", 0, 100, 16, absl::Minutes(2), &fill);
  auto* stub = broker.stub(0);
  absl::StatusOr<WireSizes> sizes =
      SizesOf<v1::GetCredentialRequest, v1::CredentialSummary>(
          servers.broker_target, BrokerCalls::GetRequest("g0"),
          [&](auto* ctx, const auto& q, auto* r) {
            return stub->GetCredential(ctx, q, r);
          });
  if (!sizes.ok()) return sizes.status();
  echo.MatchSizes(*sizes);
  for (int c : ParseInts(absl::GetFlag(FLAGS_growth_concurrency))) {
    std::atomic<uint64_t> n{0};
    auto [base, st] = MedianPair(
        servers, [&] { return echo.Run(c, d); },
        [&] {
          return RunLoop("GetCredential", c, d, [&](int w, Done done) {
            broker.Get(w, absl::StrCat("g", n++ % stored), std::move(done));
            return true;
          });
        });
    base.name = absl::StrCat("Echo (baseline, ", sizes->request, " B → ",
                             sizes->response, " B)");
    conc.Add(LoadCells(base, nullptr));
    conc.Add(LoadCells(st, &base));
  }
  conc.Print();

  // The smallest store lives in a daemon of its own, and every larger
  // store's figure alternates with a figure of it, windows of equal length
  // back to back: the ratio compares two figures taken under the same load,
  // not one taken tens of seconds (a fill) after the other.
  std::vector<int> counts = ParseInts(absl::GetFlag(FLAGS_growth_profiles));
  std::sort(counts.begin(), counts.end());
  if (counts.empty()) return absl::OkStatus();
  const int smallest = counts.front();
  Table size(absl::StrCat("Growth: GetCredential (1 caller, random profile) by "
                          "stored profiles; "
                          "each larger store alternates with a ",
                          smallest, "-profile daemon"),
             {"stored profiles", "fill rate (Put/s, 32 callers)", "ops/s",
              "p50", "p99", "p99.9", "server CPU per call",
              "p99 vs " + absl::StrCat(smallest) + " profiles"});
  BrokerProcess reference(servers.dir() + "/reference", servers.dir());
  if (absl::Status s = reference.Start({"--allow_self_approval"}); !s.ok())
    return s;
  Target reference_target{reference.address(), reference.approver_token(), {}};
  reference_target.Connect(1);
  BrokerCalls reference_calls(reference_target);
  Stats reference_fill;
  if (reference_calls.Fill("g", 0, smallest, 4, absl::Minutes(1),
                           &reference_fill) < smallest) {
    return absl::InternalError("filling the reference store failed: " +
                               reference_fill.first_error);
  }
  // One caller reading a random profile of `count` for the figure's length.
  auto random_reads = [&](BrokerCalls& calls, pid_t pid, int64_t count) {
    std::atomic<uint64_t> rng{88172645463325252ull};
    return WithServerCpu(pid, [&] {
      return RunLoop("GetCredential", 1, d, [&](int w, Done done) {
        uint64_t x = rng.load();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        rng.store(x);
        calls.Get(w, absl::StrCat("g", x % count), std::move(done));
        return true;
      });
    });
  };
  auto cells = [](const std::string& name, const std::string& rate,
                  const Stats& st, const std::string& ratio) {
    return std::vector<std::string>{
        name,
        rate,
        Fmt(st.ops_per_sec()),
        Us(st.PercentileUs(0.5)),
        Us(st.PercentileUs(0.99)),
        Us(st.PercentileUs(0.999)),
        absl::StrFormat("%.1f µs", st.server_cpu_us),
        ratio};
  };
  std::vector<Stats> reference_figures;
  std::vector<std::vector<std::string>> rows;
  absl::Duration fill_left = absl::GetFlag(FLAGS_fill_limit);
  for (int target : counts) {
    if (target == smallest) continue;
    std::string rate = "-";
    if (stored < target && fill_left > absl::ZeroDuration()) {
      const absl::Time t0 = absl::Now();
      stored = broker.Fill("g", stored, target, 32, fill_left, &fill);
      fill_left -= absl::Now() - t0;
      rate = Fmt(fill.ops_per_sec());
    }
    const int64_t have = std::min<int64_t>(stored, target);
    AlternatingPairs runs = MeasurePairs(
        [&] {
          return random_reads(reference_calls, reference.pid(), smallest);
        },
        [&] { return random_reads(broker, servers.broker_pid(), have); },
        [](const Stats& reference_figure, const Stats& st) {
          return reference_figure.PercentileUs(0.99) > 0
                     ? st.PercentileUs(0.99) /
                           reference_figure.PercentileUs(0.99)
                     : 0;
        });
    const std::pair<Stats, Stats>& median = runs.median();
    const std::string ratio_cell = Ratio(median.second.PercentileUs(0.99),
                                         median.first.PercentileUs(0.99)) +
                                   runs.MedianOf();
    rows.push_back(cells(have == target
                             ? absl::StrCat(have)
                             : absl::StrCat(have, " (fill limit reached)"),
                         rate, median.second, ratio_cell));
    for (auto& r : runs.pairs) reference_figures.push_back(std::move(r.first));
  }
  if (reference_figures.empty())
    reference_figures.push_back(
        random_reads(reference_calls, reference.pid(), smallest));
  std::sort(reference_figures.begin(), reference_figures.end(),
            [](const Stats& a, const Stats& b) {
              return a.PercentileUs(0.99) < b.PercentileUs(0.99);
            });
  size.Add(cells(
      absl::StrCat(smallest, " (its own daemon",
                   reference_figures.size() > 1
                       ? absl::StrCat("; median p99 of ",
                                      reference_figures.size(), " figures")
                       : "",
                   ")"),
      "-", reference_figures[reference_figures.size() / 2], "1.00×"));
  for (auto& r : rows) size.Add(std::move(r));
  if (!reference.Stop(absl::Seconds(20)).ok()) reference.Kill();
  size.Print();
  return absl::OkStatus();
}

}  // namespace benchmark
}  // namespace credbroker
