// credbrokerd as a process: start and clean stop, file permissions, the
// master key check, the single-broker lock, stale sockets, secrets never in
// clear on disk or in its output, and durability across SIGKILL.
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/internal/convert.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"

namespace credbroker {
namespace testing {
namespace {

class DaemonTest : public BrokerTest {
 protected:
  DaemonTest() { start_in_setup_ = false; }

  void StartBroker() {
    absl::Status started = broker_->Start();
    ASSERT_TRUE(started.ok()) << started;
    client_ = broker_->Client();
    ASSERT_NE(client_, nullptr);
  }

  std::string data_dir() const { return broker_->data_dir(); }
  std::string db_path() const { return data_dir() + "/credbroker.db"; }
};

bool IsSocket(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

TEST_F(DaemonTest, StartsPrivateAndStopsCleanly) {
  ASSERT_FALSE(FileExists(data_dir()));
  StartBroker();
  if (HasFatalFailure()) return;

  EXPECT_EQ(FileMode(data_dir()), 0700);
  EXPECT_TRUE(IsSocket(broker_->socket_path()));
  EXPECT_EQ(FileMode(broker_->socket_path()), 0600);
  for (const char* f : {"approver.token", "agent.token", "master.key"}) {
    EXPECT_EQ(FileMode(data_dir() + "/" + f), 0600) << f;
  }
  EXPECT_TRUE(FileExists(db_path()));
  EXPECT_TRUE(
      absl::StrContains(broker_->stdout_text(), broker_->socket_path()));
  ASSERT_TRUE(client_->ListProviders().ok());
  // The database and its WAL files too: nothing in the directory is open to
  // group or others.
  ASSERT_TRUE(Put("custom", "", {{"k", "v-" + RandomString(12)}}).ok());
  for (const std::string& f : ListFiles(data_dir())) {
    EXPECT_EQ(FileMode(data_dir() + "/" + f) & 077, 0) << f;
  }

  // (An idle client connection left open makes the stop wait out the
  // broker's shutdown grace period; close ours first.)
  client_.reset();
  absl::StatusOr<int> code = broker_->Stop();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << broker_->stderr_text();
  EXPECT_FALSE(FileExists(broker_->socket_path()));

  // SIGINT stops it the same way.
  StartBroker();
  if (HasFatalFailure()) return;
  client_.reset();
  kill(broker_->pid(), SIGINT);
  absl::StatusOr<int> int_code =
      broker_->Stop();  // Already stopping; SIGTERM is harmless.
  ASSERT_TRUE(int_code.ok()) << int_code.status();
  EXPECT_EQ(*int_code, 0) << broker_->stderr_text();
  EXPECT_FALSE(FileExists(broker_->socket_path()));
}

TEST_F(DaemonTest, HelpListsTheDaemonsFlagsAndExitsZero) {
  absl::StatusOr<int> code = broker_->RunExpectingExit({"--help"});
  ASSERT_TRUE(code.ok()) << code.status();
  const std::string out = broker_->stdout_text();
  EXPECT_EQ(*code, 0) << out << broker_->stderr_text();
  EXPECT_FALSE(absl::StrContains(out, "No flags matched")) << out;
  for (const char* flag :
       {"--data_dir", "--listen", "--approval_factor", "--key_source",
        "--passphrase_fd", "--tls_cert", "--spill_dir", "--passkey_origins",
        "--require_passkey"}) {
    EXPECT_TRUE(
        absl::StrContains(out, absl::StrCat("\n  ", flag, " (default: ")))
        << flag;
  }
  // Defaults and help text, not only names.
  EXPECT_TRUE(absl::StrContains(out, "--approval_factor (default: \"pin\")"))
      << out;
  EXPECT_TRUE(absl::StrContains(out, "--approval_unlock_window (default: 5m)"))
      << out;
  EXPECT_TRUE(absl::StrContains(out, "human-presence factor")) << out;
  // Help starts nothing: no data directory.
  EXPECT_FALSE(FileExists(data_dir()));

  // Abseil's --helpshort lists them too (its exit code is Abseil's).
  code = broker_->RunExpectingExit({"--helpshort"});
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_TRUE(absl::StrContains(broker_->stdout_text(), "--key_source"))
      << broker_->stdout_text();
  EXPECT_FALSE(absl::StrContains(broker_->stdout_text(), "No flags matched"));
}

// Started with a low soft limit on descriptors (a login shell's 1024), the
// broker takes every descriptor its hard limit allows.
TEST_F(DaemonTest, RaisesItsDescriptorLimitToTheHardLimit) {
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  if (saved.rlim_max < 512)
    GTEST_SKIP() << "hard limit too low to lower the soft one";
  rlimit low = saved;
  low.rlim_cur = 256;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  absl::Status started = broker_->Start();
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);  // Before any assertion.
  ASSERT_TRUE(started.ok()) << started;
  absl::StatusOr<std::string> limits =
      ReadFileBytes(absl::StrCat("/proc/", broker_->pid(), "/limits"));
  ASSERT_TRUE(limits.ok());
  std::string want = absl::StrCat(saved.rlim_max == RLIM_INFINITY
                                      ? std::string("unlimited")
                                      : absl::StrCat(saved.rlim_max));
  for (absl::string_view line : absl::StrSplit(*limits, '\n')) {
    if (!absl::StartsWith(line, "Max open files")) continue;
    std::vector<absl::string_view> words =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    ASSERT_GE(words.size(), 5u) << line;
    EXPECT_EQ(words[3], want) << line;  // Soft limit.
    EXPECT_EQ(words[4], want) << line;  // Hard limit.
  }
}

TEST_F(DaemonTest, ExistingDataDirIsTightenedAndStaleSocketRemoved) {
  ASSERT_EQ(mkdir(data_dir().c_str(), 0755), 0);
  chmod(data_dir().c_str(), 0755);
  // A socket file nobody listens on, as a killed broker leaves behind.
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, broker_->socket_path().c_str(),
               sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  close(fd);
  ASSERT_TRUE(IsSocket(broker_->socket_path()));

  StartBroker();
  if (HasFatalFailure()) return;
  EXPECT_EQ(FileMode(data_dir()), 0700);
  EXPECT_EQ(FileMode(broker_->socket_path()), 0600);
  absl::StatusOr<std::vector<client::ProviderInfo>> r =
      client_->ListProviders();
  EXPECT_TRUE(r.ok()) << r.status();
}

TEST_F(DaemonTest, SecondBrokerOnTheSameDataDirRefuses) {
  StartBroker();
  if (HasFatalFailure()) return;
  const std::string other_logs = tmp_.path() + "/second";
  ASSERT_EQ(mkdir(other_logs.c_str(), 0700), 0);
  BrokerProcess second(data_dir(), other_logs);
  absl::StatusOr<int> code = second.RunExpectingExit();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_NE(*code, 0);
  EXPECT_TRUE(absl::StrContains(second.stderr_text(), "another credbrokerd"))
      << second.stderr_text();
  // The first one is untouched and still serving.
  EXPECT_TRUE(IsSocket(broker_->socket_path()));
  absl::StatusOr<std::vector<client::ProviderInfo>> r =
      client_->ListProviders();
  EXPECT_TRUE(r.ok()) << r.status();
}

TEST_F(DaemonTest, WrongKeyFileStopsTheStartAndOverwritesNothing) {
  StartBroker();
  if (HasFatalFailure()) return;
  ASSERT_TRUE(Put("aws", "",
                  {{"access_key_id", kAwsExampleKeyId},
                   {"secret_access_key", kAwsExampleSecret}})
                  .ok());
  client_.reset();
  absl::StatusOr<int> code = broker_->Stop();
  ASSERT_TRUE(code.ok() && *code == 0) << broker_->stderr_text();

  const std::string key_path = data_dir() + "/master.key";
  absl::StatusOr<std::string> original = ReadFileBytes(key_path);
  ASSERT_TRUE(original.ok()) << original.status();
  // Another key in the same format as the one the broker wrote.
  std::string body(absl::StripTrailingAsciiWhitespace(*original));
  std::string trailer = original->substr(body.size());
  std::string other_key;
  bool hex = !body.empty();
  for (char c : body) hex &= absl::ascii_isxdigit(c) != 0;
  if (hex) {
    const bool upper = absl::AsciiStrToUpper(body) == body;
    other_key = RandomString(body.size(),
                             upper ? "0123456789ABCDEF" : "0123456789abcdef");
  } else {
    std::string all_bytes;
    for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<char>(i));
    other_key = RandomString(body.size(), all_bytes);
  }
  ASSERT_NE(other_key, body);
  other_key += trailer;
  ASSERT_EQ(other_key.size(), original->size());
  ASSERT_TRUE(WriteFileBytes(key_path, other_key, 0600).ok());

  std::map<std::string, std::string> before;
  for (const std::string& f : ListFiles(data_dir())) {
    if (f == "broker.lock") continue;  // Holds the pid of the last broker.
    absl::StatusOr<std::string> bytes = ReadFileBytes(data_dir() + "/" + f);
    ASSERT_TRUE(bytes.ok());
    before[f] = *bytes;
  }
  ASSERT_TRUE(before.count("credbroker.db"));

  absl::StatusOr<int> refused = broker_->RunExpectingExit();
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_NE(*refused, 0);
  const std::string err = broker_->stderr_text();
  EXPECT_TRUE(absl::StrContains(err, "master.key")) << err;
  EXPECT_FALSE(absl::StrContains(broker_->stdout_text(), "ready"));
  EXPECT_FALSE(FileExists(broker_->socket_path()));
  for (const auto& [name, bytes] : before) {
    absl::StatusOr<std::string> now = ReadFileBytes(data_dir() + "/" + name);
    ASSERT_TRUE(now.ok()) << name << " was removed";
    EXPECT_TRUE(*now == bytes) << name << " was changed by the refused start";
  }

  // With the right key back, everything is there.
  ASSERT_TRUE(WriteFileBytes(key_path, *original, 0600).ok());
  StartBroker();
  if (HasFatalFailure()) return;
  absl::StatusOr<client::CredentialSummary> got = Get("aws", "default");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->readiness, client::Readiness::kReady);
}

// Every file of the data directory and every byte the daemon printed.
struct Haystack {
  std::string name;
  std::string bytes;
};

std::vector<Haystack> Collect(const BrokerProcess& broker) {
  std::vector<Haystack> out;
  for (const std::string& f : ListFiles(broker.data_dir())) {
    absl::StatusOr<std::string> bytes =
        ReadFileBytes(broker.data_dir() + "/" + f);
    if (bytes.ok()) out.push_back({f, *bytes});
  }
  out.push_back({"daemon output", broker.AllOutput()});
  return out;
}

TEST_F(DaemonTest, ASpillLeftBehindStopsAStartWithTheSpillOff) {
  StartBroker();
  ASSERT_TRUE(FileExists(data_dir() + "-spill"));  // Made at start, empty.
  ASSERT_TRUE(broker_->Stop().ok());
  // As if the data dir had refused writes and the broker died before the
  // store took the spill back.
  const std::string spill_db = data_dir() + "-spill/spill.db";
  ASSERT_TRUE(WriteFileBytes(spill_db, "rows", 0600).ok());
  absl::StatusOr<int> refused =
      broker_->RunExpectingExit({"--spill_dir", "none"});
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_NE(*refused, 0);
  EXPECT_TRUE(
      absl::StrContains(broker_->stderr_text(), "start with the spill enabled"))
      << broker_->stderr_text();
  EXPECT_TRUE(FileExists(spill_db));
  // An empty spill file (what a spill that could not be made leaves) is
  // dropped at start.
  ASSERT_TRUE(WriteFileBytes(spill_db, "", 0600).ok());
  StartBroker();
  EXPECT_FALSE(FileExists(spill_db));
}

TEST_F(DaemonTest, NoSecretInClearInTheDatabaseOrTheOutput) {
  StartBroker();
  if (HasFatalFailure()) return;
  std::vector<std::string> markers;  // Secret values the broker was given.

  const std::string aws_secret = NewAwsSecret();
  markers.push_back(aws_secret);
  ASSERT_TRUE(
      Put("aws", "",
          {{"access_key_id", NewAwsKeyId()}, {"secret_access_key", aws_secret}})
          .ok());
  const std::string custom_secret = "cbit-custom-" + RandomString(32);
  const std::string custom_secret2 = "cbit-custom2-" + RandomString(32);
  markers.push_back(custom_secret);
  markers.push_back(custom_secret2);
  ASSERT_TRUE(Put("custom", "app", {{"session_key", custom_secret}}).ok());
  ASSERT_TRUE(Put("custom", "app", {{"other_key", custom_secret2}}, true).ok());

  std::string domain_field;
  std::map<std::string, std::string> auth0 =
      Auth0Values("tenant.auth0.com", &domain_field);
  for (const auto& [name, value] : auth0) {
    if (absl::StrContains(name, "secret")) markers.push_back(value);
  }
  absl::StatusOr<client::StoredCredential> a = Put("auth0", "", auth0);
  EXPECT_TRUE(a.ok()) << a.status();

  const std::string key_marker = RandomString(40);
  markers.push_back(key_marker);
  client::CredentialInput gcp;
  gcp.provider = "gcp";
  gcp.from_file = SecretBytes(GcpServiceAccountJson(
      "cbit-secret-test", "sa@cbit-secret-test.iam.gserviceaccount.com",
      key_marker));
  absl::StatusOr<client::StoredCredential> g = client_->PutCredential(gcp);
  EXPECT_TRUE(g.ok()) << g.status();

  // Refused and validated values must not leak through error paths either.
  const std::string refused_secret = NewAwsSecret();
  markers.push_back(refused_secret);
  absl::StatusOr<client::StoredCredential> refused =
      Put("aws", "bad",
          {{"access_key_id", "AKIA-not-a-key"},
           {"secret_access_key", refused_secret}});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(absl::StrContains(refused.status().ToString(), refused_secret));
  const std::string wrong_field_secret = "cbit-misplaced-" + RandomString(32);
  markers.push_back(wrong_field_secret);
  absl::StatusOr<client::StoredCredential> misplaced =
      Put("aws", "bad",
          {{"access_key_id", wrong_field_secret},
           {"secret_access_key", NewAwsSecret()}});
  EXPECT_EQ(misplaced.status().code(), absl::StatusCode::kInvalidArgument);
  for (const FieldViolation& v : GetFieldViolations(misplaced.status())) {
    EXPECT_FALSE(absl::StrContains(v.description, wrong_field_secret))
        << v.field;
  }
  const std::string validated_secret = NewAwsSecret();
  markers.push_back(validated_secret);
  client::CredentialCandidate validate;
  validate.provider = "aws";
  validate.values["access_key_id"] = SecretBytes("AKIA" + RandomString(3));
  validate.values["secret_access_key"] = SecretBytes(validated_secret);
  absl::StatusOr<client::Diagnosis> vr = client_->ValidateCredential(validate);
  ASSERT_TRUE(vr.ok()) << vr.status();
  EXPECT_FALSE(absl::StrContains(
      client::internal::AsProto<v1::ValidateCredentialResponse>(*vr)
          .SerializeAsString(),
      validated_secret));

  auto check = [&](const char* when) {
    for (const Haystack& h : Collect(*broker_)) {
      for (size_t i = 0; i < markers.size(); ++i) {
        // Never print the marker itself: only which one and where.
        EXPECT_FALSE(absl::StrContains(h.bytes, markers[i]))
            << "secret #" << i << " in clear in " << h.name << " (" << when
            << ")";
        EXPECT_FALSE(
            absl::StrContains(h.bytes, absl::BytesToHexString(markers[i])))
            << "secret #" << i << " hex-encoded in " << h.name << " (" << when
            << ")";
      }
    }
  };
  // While running (the WAL holds recent writes), then after a clean stop.
  check("running");
  client_.reset();
  absl::StatusOr<int> code = broker_->Stop();
  ASSERT_TRUE(code.ok() && *code == 0) << broker_->stderr_text();
  check("stopped");
}

// What one writer had acknowledged: version -> fingerprint.
struct Acked {
  std::string profile;
  std::map<int64_t, std::string> versions;
  int64_t last = 0;
};

// Every acknowledged version is readable with its fingerprint, and the
// current version is at least the last acknowledged one.
void ExpectAllPresent(client::CredentialClient& client, const Acked& acked) {
  for (const auto& [version, fingerprint] : acked.versions) {
    absl::StatusOr<client::CredentialSummary> got =
        client.GetCredential("custom", acked.profile, version);
    ASSERT_TRUE(got.ok()) << acked.profile << " version " << version << ": "
                          << got.status();
    EXPECT_EQ(got->fingerprint, fingerprint)
        << acked.profile << " version " << version;
  }
  if (acked.last == 0) return;
  absl::StatusOr<client::CredentialSummary> cur =
      client.GetCredential("custom", acked.profile);
  ASSERT_TRUE(cur.ok()) << cur.status();
  EXPECT_GE(cur->version, acked.last) << acked.profile;
  EXPECT_EQ(cur->readiness, client::Readiness::kReady);
}

// Writes versions until a call fails (the broker was killed); returns the
// failure.
absl::Status WriteUntilFailure(client::CredentialClient& client, Acked& acked,
                               int round) {
  for (int i = 0; i < 100000; ++i) {
    client::CredentialInput req;
    req.provider = "custom";
    req.profile = acked.profile;
    req.values["counter"] = SecretBytes(
        absl::StrCat("durable-", round, "-", i, "-", RandomString(16)));
    req.values["note"] = SecretBytes("written by the SIGKILL test");
    absl::StatusOr<client::StoredCredential> put = client.PutCredential(req);
    if (!put.ok()) return put.status();
    const client::CredentialSummary& c = put->credential;
    EXPECT_GT(c.version, acked.last);
    acked.last = c.version;
    acked.versions[c.version] = c.fingerprint;
  }
  return absl::OkStatus();
}

TEST_F(DaemonTest, SigkillLosesNoAcknowledgedWrite) {
  std::random_device seed_source;
  const unsigned seed = seed_source();
  std::mt19937 rng(seed);
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  // Two writers on two profiles, concurrently.
  Acked a{"durable-a", {}, 0};
  Acked b{"durable-b", {}, 0};

  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    StartBroker();
    if (HasFatalFailure()) return;
    ExpectAllPresent(*client_, a);
    ExpectAllPresent(*client_, b);
    if (HasFatalFailure()) return;

    const pid_t pid = broker_->pid();
    const int delay_ms = std::uniform_int_distribution<int>(100, 500)(rng);
    std::thread killer([pid, delay_ms] {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      kill(pid, SIGKILL);
    });
    absl::Status b_status;
    std::thread writer_b(
        [&] { b_status = WriteUntilFailure(*client_, b, round); });
    absl::Status a_status = WriteUntilFailure(*client_, a, round);
    writer_b.join();
    killer.join();
    broker_->Kill();
    client_.reset();
    EXPECT_EQ(a_status.code(), absl::StatusCode::kUnavailable) << a_status;
    EXPECT_EQ(b_status.code(), absl::StatusCode::kUnavailable) << b_status;
    RecordProperty(absl::StrCat("acknowledged_after_round_", round),
                   static_cast<int>(a.versions.size() + b.versions.size()));
  }

  StartBroker();
  if (HasFatalFailure()) return;
  ASSERT_FALSE(a.versions.empty());
  ASSERT_FALSE(b.versions.empty());
  ExpectAllPresent(*client_, a);
  ExpectAllPresent(*client_, b);
  if (HasFatalFailure()) return;
  // The store still takes writes after the kills.
  absl::StatusOr<client::CredentialSummary> cur = Get("custom", a.profile);
  ASSERT_TRUE(cur.ok()) << cur.status();
  absl::StatusOr<client::StoredCredential> after =
      Put("custom", a.profile, {{"counter", "after-" + RandomString(16)}});
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->credential.version, cur->version + 1);
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
