// Helpers shared by the reliability tests (reliability_integration_test):
// client options, the AWS credential and need they use, and what they read
// of the daemon from outside (the store's integrity check, open descriptors,
// resident memory).
#ifndef CREDBROKER_TESTS_INTEGRATION_RELIABILITY_SUPPORT_H_
#define CREDBROKER_TESTS_INTEGRATION_RELIABILITY_SUPPORT_H_

#include <dirent.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/credbroker/agent.h"
#include "client/credbroker/approval.h"
#include "client/credbroker/client.h"
#include "tests/integration/broker_fixture.h"

namespace credbroker {
namespace testing {

constexpr absl::Duration kWait = absl::Seconds(10);

inline client::Options OptionsFor(const BrokerProcess& broker,
                                  const std::string& token) {
  client::Options o;
  o.address = broker.address();
  o.token = token;
  o.timeout = absl::Seconds(10);
  return o;
}

inline client::CredentialInput AwsPut(const std::string& profile) {
  client::CredentialInput r;
  r.provider = "aws";
  r.profile = profile;
  r.values["access_key_id"] = SecretBytes(NewAwsKeyId());
  r.values["secret_access_key"] = SecretBytes(NewAwsSecret());
  return r;
}

inline client::CredentialNeeded AwsNeed(const std::string& need_id) {
  client::CredentialNeeded n;
  n.need_id = need_id;
  n.provider = "aws";
  n.action = "deploy to AWS in us-east-1";
  return n;
}

// PRAGMA integrity_check on a read-only connection: "ok" or what it found.
inline std::string IntegrityCheck(const std::string& db_path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) !=
      SQLITE_OK) {
    std::string err = db != nullptr ? sqlite3_errmsg(db) : "cannot open";
    sqlite3_close(db);
    return err;
  }
  std::string result;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr) !=
      SQLITE_OK) {
    result = sqlite3_errmsg(db);
  } else {
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      absl::StrAppend(
          &result, result.empty() ? "" : "; ",
          reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
    }
    if (result.empty()) result = sqlite3_errmsg(db);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return result;
}

inline int OpenFds(pid_t pid) {
  int n = 0;
  DIR* d = opendir(absl::StrCat("/proc/", pid, "/fd").c_str());
  if (d == nullptr) return -1;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

inline int64_t RssKb(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view v = line;
    if (absl::ConsumePrefix(&v, "VmRSS:")) {
      v = absl::StripAsciiWhitespace(v);
      absl::ConsumeSuffix(&v, " kB");
      int64_t kb = -1;
      return absl::SimpleAtoi(v, &kb) ? kb : -1;
    }
  }
  return -1;
}

inline bool IsTerminal(client::RequestState s) {
  return s == client::RequestState::kGranted ||
         s == client::RequestState::kDenied ||
         s == client::RequestState::kExpired ||
         s == client::RequestState::kCancelled;
}

}  // namespace testing
}  // namespace credbroker

#endif  // CREDBROKER_TESTS_INTEGRATION_RELIABILITY_SUPPORT_H_
