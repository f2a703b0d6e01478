// Security hardening through the real daemon: TLS on TCP (generated or
// named certificate, client certificates, plaintext only on loopback), the
// approval PIN and its lockout, audit-chain verification after tampering
// with the database file, and the backoff on failed authentication.
#include <sqlite3.h>

#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "broker/crypto/tls_cert.h"
#include "client/credbroker/agent.h"
#include "client/credbroker/approval.h"
#include "common/files.h"
#include "tests/integration/broker_fixture.h"

namespace credbroker {
namespace testing {
namespace {

class SecurityTest : public BrokerTest {
 protected:
  SecurityTest() { start_in_setup_ = false; }

  std::string DataDir() const { return broker_->data_dir(); }
  std::vector<std::string> UnixAndTcp() const {
    return {"--listen",
            absl::StrCat("unix:", broker_->socket_path(), ",127.0.0.1:0")};
  }
  // The TCP address the daemon says it serves on.
  std::string TcpAddress() const {
    std::smatch m;
    std::string out = broker_->stdout_text();
    static const std::regex kServing(
        "serving on [^\\n]*?(127\\.0\\.0\\.1:[0-9]+)");
    if (!std::regex_search(out, m, kServing)) return "";
    return m[1];
  }
  client::Options TcpOptions() const {
    client::Options o;
    o.address = TcpAddress();
    o.token = broker_->approver_token();
    o.timeout = absl::Seconds(5);
    return o;
  }
  static absl::Status Call(const client::Options& options) {
    absl::StatusOr<std::unique_ptr<client::CredentialClient>> c =
        client::CredentialClient::Connect(options);
    if (!c.ok()) return c.status();
    return (*c)->ListProviders().status();
  }
  CommandResult Credctl(const std::vector<std::string>& args,
                        const std::string& stdin_text = "") {
    std::vector<std::string> argv = {CredctlPath(), "--data_dir", DataDir()};
    argv.insert(argv.end(), args.begin(), args.end());
    if (!stdin_text.empty()) {
      // Through a file, so that the PIN is never on a command line.
      std::string in = tmp_.path() + "/stdin";
      EXPECT_TRUE(WriteFileBytes(in, stdin_text).ok());
      std::string cmd = "exec";
      for (const std::string& a : argv) absl::StrAppend(&cmd, " '", a, "'");
      absl::StrAppend(&cmd, " < '", in, "'");
      argv = {"/bin/sh", "-c", cmd};
    }
    absl::StatusOr<CommandResult> r = RunCommand(argv, absl::Seconds(30));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CommandResult();
  }
};

TEST_F(SecurityTest, TcpServesTlsWithAGeneratedCertificate) {
  ASSERT_TRUE(broker_->Start(UnixAndTcp()).ok()) << broker_->stderr_text();
  ASSERT_FALSE(TcpAddress().empty()) << broker_->stdout_text();
  EXPECT_EQ(FileMode(DataDir() + "/tls.key"), 0600);
  absl::StatusOr<std::string> cert = ReadFileBytes(DataDir() + "/tls.crt");
  ASSERT_TRUE(cert.ok());
  absl::StatusOr<std::string> fingerprint = CertificateFingerprint(*cert);
  ASSERT_TRUE(fingerprint.ok());
  EXPECT_TRUE(absl::StrContains(
      broker_->stdout_text(),
      absl::StrCat("TLS SHA-256 fingerprint: ", *fingerprint)));

  client::Options tls = TcpOptions();
  tls.tls_ca_file = DataDir() + "/tls.crt";
  EXPECT_TRUE(Call(tls).ok()) << Call(tls);
  client::Options plaintext = TcpOptions();
  plaintext.insecure_plaintext = true;
  EXPECT_FALSE(Call(plaintext).ok());
  // Another certificate as the only trusted one: the handshake fails.
  absl::StatusOr<TlsIdentity> stranger =
      GenerateSelfSigned(SelfSignedOptions(), absl::Now());
  ASSERT_TRUE(stranger.ok());
  ASSERT_TRUE(
      WriteFileBytes(tmp_.path() + "/stranger.crt", stranger->cert_pem).ok());
  client::Options wrong_ca = TcpOptions();
  wrong_ca.tls_ca_file = tmp_.path() + "/stranger.crt";
  EXPECT_FALSE(Call(wrong_ca).ok());

  // credctl finds <data dir>/tls.crt by itself for a TCP --broker.
  CommandResult r = Credctl({"--broker", TcpAddress(), "providers"});
  EXPECT_EQ(r.exit_code, 0) << r.err << "\nbroker at " << TcpAddress() << ":\n"
                            << broker_->stdout_text() << broker_->stderr_text();

  // The certificate is kept across restarts.
  absl::StatusOr<int> code = broker_->Stop();
  ASSERT_TRUE(code.ok() && *code == 0);
  ASSERT_TRUE(broker_->Start(UnixAndTcp()).ok()) << broker_->stderr_text();
  EXPECT_TRUE(absl::StrContains(broker_->stdout_text(), *fingerprint));
  EXPECT_FALSE(absl::StrContains(broker_->stdout_text(), "generated now"));
}

// The SHA-256 fingerprint of the certificate the server at `address`
// (127.0.0.1:PORT) presents, from the openssl command line; "" when the
// handshake fails.
std::string ServedFingerprint(const std::string& address) {
  absl::StatusOr<CommandResult> r = RunCommand(
      {"/bin/sh", "-c",
       absl::StrCat("openssl s_client -connect ", address,
                    " -alpn h2 -servername localhost </dev/null 2>/dev/null | "
                    "openssl x509 -noout -fingerprint -sha256")},
      absl::Seconds(20));
  if (!r.ok() || r->exit_code != 0) return "";
  std::string out = r->out;
  size_t eq = out.find('=');
  if (eq == std::string::npos) return "";
  return std::string(absl::StripAsciiWhitespace(out.substr(eq + 1)));
}

// While the daemon runs, its self-signed certificate is renewed on the
// timer when due (here: a pair with 20 days left put in its place) and the
// server presents the renewed one to new connections, without a restart.
TEST_F(SecurityTest, TheRenewedCertificateIsServedWithoutARestart) {
  std::vector<std::string> flags = UnixAndTcp();
  flags.push_back("--tls_refresh_interval=1s");
  ASSERT_TRUE(broker_->Start(flags).ok()) << broker_->stderr_text();
  ASSERT_FALSE(TcpAddress().empty()) << broker_->stdout_text();
  const std::string cert_file = DataDir() + "/tls.crt";
  absl::StatusOr<std::string> first =
      CertificateFingerprint(*ReadFileBytes(cert_file));
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(ServedFingerprint(TcpAddress()), *first);

  SelfSignedOptions short_lived;
  short_lived.validity = absl::Hours(24 * 20);
  absl::StatusOr<TlsIdentity> due =
      GenerateSelfSigned(short_lived, absl::Now());
  ASSERT_TRUE(due.ok());
  ASSERT_TRUE(
      WritePrivateFile(DataDir() + "/tls.key", due->key_pem.Reveal(), false)
          .ok());
  ASSERT_TRUE(WritePrivateFile(cert_file, due->cert_pem, false).ok());

  // Renewed on disk (a year from now, not the 20 days put there), then
  // served.
  std::string on_disk, served;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    absl::StatusOr<TlsIdentity> id =
        LoadTlsIdentity(cert_file, DataDir() + "/tls.key");
    if (id.ok() && id->not_after > absl::Now() + absl::Hours(24 * 300)) {
      on_disk = id->fingerprint;
      served = ServedFingerprint(TcpAddress());
      if (served == on_disk) break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_FALSE(on_disk.empty()) << "not renewed:\n" << broker_->stderr_text();
  EXPECT_EQ(served, on_disk) << broker_->stderr_text();
  EXPECT_NE(on_disk, *first);
  EXPECT_NE(on_disk, due->fingerprint);
  EXPECT_TRUE(
      absl::StrContains(broker_->stderr_text(), "renewed the TLS certificate"))
      << broker_->stderr_text();
  // Clients that read tls.crt from the data directory trust it.
  client::Options tls = TcpOptions();
  tls.tls_ca_file = cert_file;
  EXPECT_TRUE(Call(tls).ok()) << Call(tls);
}

// credctl leaves TLS to credctl-tls beside it (client/cli/CMakeLists.txt).
// A credctl without its companion still reaches the Unix socket, and for a
// TCP address says what is missing and what to do instead.
TEST_F(SecurityTest, CredctlWithoutItsTlsCompanionSaysWhatToFix) {
  ASSERT_TRUE(broker_->Start(UnixAndTcp()).ok()) << broker_->stderr_text();
  ASSERT_FALSE(TcpAddress().empty()) << broker_->stdout_text();
  absl::StatusOr<std::string> binary = ReadFileBytes(CredctlPath());
  ASSERT_TRUE(binary.ok()) << binary.status();
  const std::string lone = tmp_.path() + "/credctl";
  ASSERT_TRUE(WriteFileBytes(lone, *binary, 0700).ok());

  absl::StatusOr<CommandResult> tcp = RunCommand(
      {lone, "--data_dir", DataDir(), "--broker", TcpAddress(), "providers"},
      absl::Seconds(30));
  ASSERT_TRUE(tcp.ok()) << tcp.status();
  EXPECT_EQ(tcp->exit_code, 1) << tcp->out;
  EXPECT_TRUE(absl::StrContains(
      tcp->err, absl::StrCat("cannot run ", tmp_.path(), "/credctl-tls")))
      << tcp->err;
  EXPECT_TRUE(absl::StrContains(tcp->err, "--broker unix:")) << tcp->err;
  EXPECT_TRUE(tcp->out.empty()) << tcp->out;

  absl::StatusOr<CommandResult> unix_socket = RunCommand(
      {lone, "--data_dir", DataDir(), "providers"}, absl::Seconds(30));
  ASSERT_TRUE(unix_socket.ok()) << unix_socket.status();
  EXPECT_EQ(unix_socket->exit_code, 0) << unix_socket->err;
  EXPECT_TRUE(absl::StrContains(unix_socket->out, "aws")) << unix_socket->out;
}

TEST_F(SecurityTest, PlaintextTcpOnlyOnLoopbackAndWithAWarning) {
  absl::StatusOr<int> code = broker_->RunExpectingExit(
      {"--listen", "0.0.0.0:0", "--allow_remote", "--insecure_plaintext_tcp"});
  ASSERT_TRUE(code.ok());
  EXPECT_NE(*code, 0);
  EXPECT_TRUE(absl::StrContains(broker_->stderr_text(), "loopback"))
      << broker_->stderr_text();

  std::vector<std::string> args = UnixAndTcp();
  args.push_back("--insecure_plaintext_tcp");
  ASSERT_TRUE(broker_->Start(args).ok()) << broker_->stderr_text();
  EXPECT_TRUE(absl::StrContains(broker_->stdout_text(),
                                "WARNING: TCP listeners are plaintext"));
  EXPECT_FALSE(FileExists(DataDir() + "/tls.key"));
  client::Options plaintext = TcpOptions();
  plaintext.insecure_plaintext = true;
  EXPECT_TRUE(Call(plaintext).ok()) << Call(plaintext);
}

TEST_F(SecurityTest, NamedCertificateAndRequiredClientCertificates) {
  // The user's own server certificate, and a CA for clients (a self-signed
  // client certificate is its own CA).
  absl::StatusOr<TlsIdentity> server =
      GenerateSelfSigned(SelfSignedOptions(), absl::Now());
  SelfSignedOptions client_options;
  client_options.common_name = "approver-laptop";
  client_options.dns_names = {};
  client_options.ip_addresses = {};
  client_options.client = true;
  absl::StatusOr<TlsIdentity> client_id =
      GenerateSelfSigned(client_options, absl::Now());
  ASSERT_TRUE(server.ok() && client_id.ok());
  const std::string dir = tmp_.path();
  ASSERT_TRUE(WriteFileBytes(dir + "/server.crt", server->cert_pem).ok());
  ASSERT_TRUE(
      WriteFileBytes(dir + "/server.key", server->key_pem.Reveal()).ok());
  ASSERT_TRUE(WriteFileBytes(dir + "/client.crt", client_id->cert_pem).ok());
  ASSERT_TRUE(
      WriteFileBytes(dir + "/client.key", client_id->key_pem.Reveal()).ok());

  std::vector<std::string> args = UnixAndTcp();
  for (const char* a : {"--tls_cert", "--tls_key", "--tls_client_ca"})
    args.push_back(a);
  args.insert(args.end() - 2, dir + "/server.crt");
  args.insert(args.end() - 1, dir + "/server.key");
  args.push_back(dir + "/client.crt");
  ASSERT_TRUE(broker_->Start(args).ok()) << broker_->stderr_text();
  EXPECT_TRUE(absl::StrContains(broker_->stdout_text(), server->fingerprint));
  EXPECT_FALSE(FileExists(DataDir() + "/tls.crt"));  // Nothing generated.

  client::Options no_cert = TcpOptions();
  no_cert.tls_ca_file = dir + "/server.crt";
  EXPECT_FALSE(Call(no_cert).ok());
  client::Options with_cert = no_cert;
  with_cert.tls_cert_file = dir + "/client.crt";
  with_cert.tls_key_file = dir + "/client.key";
  EXPECT_TRUE(Call(with_cert).ok()) << Call(with_cert);
  // The Unix socket is unaffected.
  EXPECT_TRUE(broker_->Client()->ListProviders().ok());
}

TEST_F(SecurityTest, ApprovalPinGatesApproveAndLocksOut) {
  ASSERT_TRUE(broker_->Start().ok()) << broker_->stderr_text();
  const std::string pin = RandomString(12);
  // credctl pin set, reading the PIN from stdin, named explicitly.
  CommandResult set = Credctl({"pin", "set", "--pin_fd", "0"}, pin + "\n");
  ASSERT_EQ(set.exit_code, 0) << set.err;
  CommandResult status = Credctl({"pin", "status"});
  EXPECT_TRUE(absl::StrContains(status.out, "An approval PIN is set"))
      << status.out;

  client::Options options;
  options.address = broker_->address();
  options.token = broker_->approver_token();
  auto approval = client::ApprovalClient::Connect(options);
  ASSERT_TRUE(approval.ok());
  client::Approval req;
  req.request_id = "r-does-not-exist";
  // No PIN, and a wrong one: PERMISSION_DENIED. The right PIN passes the
  // gate (and the unknown request is then NOT_FOUND).
  EXPECT_EQ((*approval)->Approve(req).status().code(),
            absl::StatusCode::kPermissionDenied);
  req.pin = SecretBytes(pin);
  EXPECT_EQ((*approval)->Approve(req).status().code(),
            absl::StatusCode::kNotFound);
  req.pin = SecretBytes("wrong-pin");
  absl::Status last;
  for (int i = 0; i < 5; ++i) {
    last = (*approval)->Approve(req).status();
    EXPECT_EQ(last.code(), absl::StatusCode::kPermissionDenied) << last;
  }
  EXPECT_TRUE(absl::StrContains(last.message(), "locked for 30 s")) << last;
  req.pin = SecretBytes(pin);
  absl::Status locked = (*approval)->Approve(req).status();
  EXPECT_EQ(locked.code(), absl::StatusCode::kResourceExhausted) << locked;
  // credctl approve gets the PIN from --pin_fd and hears the lockout.
  CommandResult approve =
      Credctl({"approve", "r-does-not-exist", "--pin_fd", "0"}, pin + "\n");
  EXPECT_NE(approve.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(approve.err, "RESOURCE_EXHAUSTED"))
      << approve.err;

  // Every refusal is audited; the PIN is nowhere.
  CommandResult audit = Credctl({"audit", "--kind", "pin."});
  EXPECT_TRUE(absl::StrContains(audit.out, "pin.set")) << audit.out;
  EXPECT_TRUE(absl::StrContains(audit.out, "pin.refused")) << audit.out;
  for (const std::string& text :
       {audit.out, audit.err, set.out, set.err, approve.out, approve.err,
        broker_->AllOutput()}) {
    EXPECT_FALSE(absl::StrContains(text, pin)) << "the PIN leaked";
  }
  absl::StatusOr<std::string> db =
      ReadFileBytes(DataDir() + "/credbroker.db-wal");
  if (db.ok()) {
    EXPECT_FALSE(absl::StrContains(*db, pin));
  }
}

TEST_F(SecurityTest, AuditVerifyFindsAnEditedEvent) {
  ASSERT_TRUE(broker_->Start().ok()) << broker_->stderr_text();
  // A few events: PIN set, a refused call, PIN cleared.
  ASSERT_EQ(Credctl({"pin", "set", "--pin_fd", "0"}, "first-pin\n").exit_code,
            0);
  EXPECT_FALSE(broker_->ClientWithToken("not-a-token")->ListProviders().ok());
  ASSERT_EQ(Credctl({"pin", "clear", "--pin_fd", "0"}, "first-pin\n").exit_code,
            0);
  absl::StatusOr<client::AuditLogCheck> ok =
      broker_->Client()->VerifyAuditLog();
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->intact);
  EXPECT_GE(ok->events_checked, 3);
  CommandResult r = Credctl({"audit", "verify"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(r.out, "OK")) << r.out;

  // Edit event 2 in the file while the daemon is stopped.
  absl::StatusOr<int> code = broker_->Stop();
  ASSERT_TRUE(code.ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((DataDir() + "/credbroker.db").c_str(), &db),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "UPDATE audit_events SET detail = detail || ' "
                         "(edited)' WHERE sequence = 2",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  ASSERT_TRUE(broker_->Start().ok()) << broker_->stderr_text();

  absl::StatusOr<client::AuditLogCheck> broken =
      broker_->Client()->VerifyAuditLog();
  ASSERT_TRUE(broken.ok()) << broken.status();
  EXPECT_FALSE(broken->intact);
  EXPECT_EQ(broken->broken_at_sequence, 2);
  EXPECT_EQ(broken->events_checked, 1);
  r = Credctl({"audit", "verify"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.out, "BROKEN at event 2")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "edited")) << r.out;
}

TEST_F(SecurityTest, RepeatedBadTokensBackOffWithoutRevealingAnything) {
  ASSERT_TRUE(broker_->Start().ok()) << broker_->stderr_text();
  std::vector<absl::Status> refusals;
  for (int i = 0; i < 6; ++i) {
    refusals.push_back(
        broker_->ClientWithToken(RandomString(43))->ListProviders().status());
    EXPECT_EQ(refusals.back().code(), absl::StatusCode::kUnauthenticated)
        << refusals.back();
  }
  // Every bad token gets the same answer.
  EXPECT_EQ(refusals[0].message(), refusals[5].message());
  // This user's bad tokens are now held off...
  absl::Status locked =
      broker_->ClientWithToken(RandomString(43))->ListProviders().status();
  EXPECT_EQ(locked.code(), absl::StatusCode::kResourceExhausted) << locked;
  EXPECT_TRUE(absl::StrContains(locked.message(), "try again in")) << locked;
  // ...while a valid token passes, from this process or another.
  EXPECT_TRUE(broker_->Client()->ListProviders().ok());
  CommandResult other = Credctl({"providers"});
  EXPECT_EQ(other.exit_code, 0) << other.err;
  refusals.push_back(locked);
  for (const absl::Status& s : refusals) {
    EXPECT_FALSE(absl::StrContains(s.message(), broker_->approver_token()));
    EXPECT_FALSE(absl::StrContains(s.message(), broker_->agent_token()));
  }
}

TEST_F(SecurityTest, DaemonCannotDumpCore) {
  ASSERT_TRUE(broker_->Start().ok()) << broker_->stderr_text();
  absl::StatusOr<std::string> limits =
      ReadFileBytes(absl::StrCat("/proc/", broker_->pid(), "/limits"));
  ASSERT_TRUE(limits.ok()) << limits.status();
  std::smatch m;
  std::string text = *limits;
  ASSERT_TRUE(std::regex_search(
      text, m, std::regex("Max core file size +([0-9]+) +([0-9]+)")))
      << text;
  EXPECT_EQ(m[1], "0");
  EXPECT_EQ(m[2], "0");
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
