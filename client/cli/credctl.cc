// credctl: manage the credentials held by credbrokerd, and answer (or make)
// agents' credential requests, from a terminal.
//
//   credctl [--broker ADDR] [--token_file PATH] [--json] COMMAND ...
//
// Every command talks to the broker through the client library with the
// token of the role it acts as: the agent token for `request`, the approver
// token for everything else. Errors print the broker's message and every
// field violation and exit 1; usage errors exit 2. The approval-flow
// commands live in commands_flow.cc.
#include <limits.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/common/errors.h"
#include "broker/common/files.h"
#include "broker/common/secret.h"
#include "broker/common/text.h"
#include "client/cli/cli_util.h"
#include "client/cli/commands_flow.h"
#include "client/cli/commands_lock.h"
#include "client/cli/commands_passkey.h"
#include "client/cli/commands_provider.h"
#include "client/credbroker/client.h"
#include "client/internal/channel.h"
#include "grpc/grpc.h"

namespace credbroker {
namespace cli {
namespace {

constexpr char kUsage[] =
    R"(credctl — manage the credentials held by credbrokerd

Usage: credctl [global flags] COMMAND [flags]

Commands:
  providers                         list the providers and what each needs
  list [PROVIDER]                   configured credentials and their readiness
  show PROVIDER [--profile P] [--version N]
                                    one credential, secrets masked
  set PROVIDER [--profile P] [--field NAME=VALUE]... [--field NAME]...
               [--from_file PATH] [--generate NAME]... [--keep]
                                    store a new version (prompts on a terminal
                                    for missing fields, secrets hidden;
                                    --field NAME alone prompts for that field)
  delete PROVIDER [--profile P]     remove every version
  validate PROVIDER [--profile P] [--field NAME=VALUE]... [--from_file PATH]
                                    diagnose candidate values, or the stored ones
  needs TARGET... [--profile P] [--resource R]
                                    which credentials these targets need, and
                                    which profile each would use (R: a resource,
                                    e.g. a cluster, bound to the profile that
                                    created it)
  doctor [PROVIDER] [--profile P]   "why does it not work?" for stored credentials
                                    (all of them without PROVIDER): readiness,
                                    findings and fixes, what to check in the
                                    provider's console, the permissions needed;
                                    exits 1 when any credential is not READY (or
                                    nothing is stored for the PROVIDER named)
  history PROVIDER [--profile P]    every stored version: times and fingerprints
  rollback PROVIDER --version N [--profile P]
                                    store version N's values again as a new version
  default PROVIDER [PROFILE]        show (or set) the profile used when none is named
  bindings [PROVIDER]               resources and the provider/profile that created
                                    each (state: current, rotated, profile_deleted)
  audit [--provider P] [--kind K] [--since T] [--until T]
                                    the audit log (T: RFC 3339, e.g. 2026-11-26T10:00:00Z)
  audit verify                      check the audit log's hash chain; exits 1 and
                                    names the first bad event when it was edited,
                                    or events were inserted or removed
  unlock [--passphrase_fd N]        unlock a locked broker with the store's
                                    passphrase (asked on the terminal)
  lock                              lock now: the broker wipes the store's key
                                    from memory until the next unlock
  rekey [--to passphrase|file] [--passphrase_fd N] [--new_passphrase_fd N]
        [--pin_fd N]                change what protects the store's key (a new
                                    passphrase by default; file: a key file any
                                    process running as you can read); asks for
                                    the current passphrase, the new one twice and
                                    the approval PIN on the terminal, or reads
                                    one line of each from the descriptors
  pin set | pin clear | pin status  the approval PIN every approval needs (asked
                                    on the terminal — the new PIN twice; or lines
                                    of --pin_fd N: the current PIN first when one
                                    is set; the first PIN of a passphrase store
                                    needs the store's passphrase, asked first)
  passkey list | passkey remove ID | passkey remove --all
                                    the passkeys that approve in place of the PIN
                                    (registered in the IDE); removing asks the PIN

Approving agents' requests (approver token):
  watch                             the approval client: shows each pending request,
                                    asks for the form's fields and approve/deny;
                                    without a terminal (or with --json) prints
                                    each event as a line
  pending                           requests waiting for a decision
  form PROVIDER [--profile P] | form --request ID
                                    the credential form (fields, how to get them)
  approve REQUEST_ID [--scope once|session|standing] [--ttl D] [--pattern P]
                     [--field NAME=VALUE]... [--field NAME]... [--generate NAME]...
                                    approve (D: 15m, 2h, 720h; P: action pattern
                                    of a standing approval, e.g. "deploy *")
                                    (asks for the approval PIN when one is set;
                                    --pin_fd N reads it from that descriptor)
  deny REQUEST_ID --reason TEXT     deny, telling the agent why
  grants [--all]                    active grants (--all: ended ones too)
  revoke GRANT_ID [--reason TEXT]   end a grant; the agent is told
  standing [--all]                  standing approvals
  standing revoke ID                end a standing approval

Acting as an agent (agent token, default <data dir>/agent.token):
  request PROVIDER --action TEXT [--profile P] [--context K=V]... [--need_id ID]
          [--session_key K] [--timeout S]
                                    ask for a credential and wait (default 900 s)
                                    for the decision; prints the grant as JSON;
                                    exits 3 when denied, 4 expired, 5 cancelled

Global flags:
  --broker ADDR       unix:/path/broker.sock or 127.0.0.1:PORT
                      (default unix:<data dir>/broker.sock)
  --token_file PATH   token of the command's role (default <data dir>/approver.token,
                      or <data dir>/agent.token for `request`)
  --data_dir DIR      the broker's data directory (default $CREDBROKER_DATA_DIR
                      or ~/.local/share/credbroker)
  --json              print the broker's answer as JSON
  --tls_ca PATH       for a TCP --broker: the certificate to trust (default
                      <data dir>/tls.crt, the broker's self-signed one)
  --tls_cert PATH --tls_key PATH
                      client certificate, for a broker started with --tls_client_ca
  --insecure_plaintext  plaintext TCP, for a broker run with --insecure_plaintext_tcp
  --timeout SECONDS   deadline of each call (default 30)
)";

// The list's ROTATE IN column, from the broker's whole days.
std::string RotateIn(const v1::CredentialSummary& c) {
  if (!c.has_rotation_due_at()) return "-";
  if (c.days_until_rotation() < 0)
    return absl::StrCat("overdue ", -c.days_until_rotation(), "d");
  if (c.days_until_rotation() == 0) return "due";
  return absl::StrCat(c.days_until_rotation(), "d");
}

std::string DaysLeft(const google::protobuf::Timestamp& due) {
  if (due.seconds() == 0) return "-";
  int64_t days = (due.seconds() - absl::ToUnixSeconds(absl::Now())) / 86400;
  if (days < 0) return absl::StrCat("overdue ", -days, "d");
  return absl::StrCat(days, "d");
}

class Cli {
 public:
  Cli(Args args, std::unique_ptr<client::CredentialClient> client)
      : args_(std::move(args)), client_(std::move(client)) {}

  int Run() {
    const std::string& c = args_.command;
    if (c == "providers") return Providers();
    if (c == "list") return List();
    if (c == "show") return Show();
    if (c == "set") return Set();
    if (c == "delete") return Delete();
    if (c == "validate") return Validate();
    if (c == "needs") return Needs();
    if (c == "audit") return Audit();
    if (c == "pin") return Pin();
    return UsageError(absl::StrCat("unknown command \"", c, "\""));
  }

 private:
  bool json() const { return args_.Switch("json"); }

  std::optional<std::string> Provider() {
    if (args_.positional.empty()) return std::nullopt;
    return args_.positional[0];
  }

  // --field NAME=VALUE and --field NAME (prompted, hidden).
  absl::Status CollectFields(
      google::protobuf::Map<std::string, std::string>* values,
      std::vector<std::string>* prompt_for) {
    for (const std::string& f : args_.All("field")) {
      size_t eq = f.find('=');
      if (eq == std::string::npos) {
        prompt_for->push_back(f);
        continue;
      }
      if (eq == 0) {
        return absl::InvalidArgumentError(
            "--field takes NAME=VALUE (or NAME alone to be prompted)");
      }
      (*values)[f.substr(0, eq)] = f.substr(eq + 1);
    }
    return absl::OkStatus();
  }

  absl::Status ReadFromFile(std::string* out) {
    std::string path = args_.Flag("from_file");
    if (path.empty()) return absl::OkStatus();
    absl::StatusOr<std::string> contents = ReadFile(path);
    if (!contents.ok()) return contents.status();
    *out = std::move(*contents);
    return absl::OkStatus();
  }

  int Providers() {
    absl::StatusOr<v1::ListProvidersResponse> r = client_->ListProviders();
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      std::cout << ToJson(*r) << "\n";
      return 0;
    }
    for (const auto& p : r->providers()) {
      std::cout << p.id() << " — " << p.display_name() << "\n";
      if (p.oauth())
        std::cout << "  connects through the provider's OAuth flow\n";
      if (p.arbitrary_fields())
        std::cout << "  any named secrets of your application\n";
      for (const auto& f : p.fields()) {
        std::cout << "  " << f.name() << (f.optional() ? " (optional)" : "")
                  << (f.sensitive() ? " [secret]" : "") << " — " << f.label();
        if (!f.default_value().empty())
          std::cout << ", default " << f.default_value();
        std::cout << "\n";
      }
      if (!p.required_permissions().empty()) {
        std::cout << "  permissions: "
                  << absl::StrJoin(p.required_permissions(), "; ") << "\n";
      }
    }
    return 0;
  }

  int List() {
    v1::ListCredentialsRequest req;
    if (auto p = Provider()) req.set_provider(*p);
    v1::ListCredentialsResponse all;
    while (true) {
      absl::StatusOr<v1::ListCredentialsResponse> r =
          client_->ListCredentials(req);
      if (!r.ok()) return PrintError(r.status());
      for (auto& c : *r->mutable_credentials())
        *all.add_credentials() = std::move(c);
      if (r->next_page_token().empty()) break;
      req.set_page_token(r->next_page_token());
    }
    if (json()) {
      std::cout << ToJson(all) << "\n";
      return 0;
    }
    if (all.credentials().empty()) {
      std::cout << "No credentials configured. Add one with `credctl set "
                   "PROVIDER`.\n";
      return 0;
    }
    std::printf("%-14s %-12s %4s  %-13s %-16s %-9s %-16s %s\n", "PROVIDER",
                "PROFILE", "VER", "READINESS", "UPDATED", "ROTATE IN",
                "EXPIRES", "FIELDS");
    bool marked = false;
    for (const auto& c : all.credentials()) {
      std::vector<std::string> fields;
      for (const auto& f : c.fields()) {
        if (f.set()) fields.push_back(absl::StrCat(f.name(), "=", f.display()));
      }
      marked |= c.is_default();
      std::printf("%-14s %-12s %4lld  %-13s %-16s %-9s %-16s %s\n",
                  c.provider().c_str(),
                  absl::StrCat(c.profile(), c.is_default() ? "*" : "").c_str(),
                  static_cast<long long>(c.version()),
                  ReadinessText(c.readiness()).c_str(),
                  FormatTime(c.updated_at()).c_str(), RotateIn(c).c_str(),
                  FormatTime(c.expires_at()).c_str(),
                  absl::StrJoin(fields, " ").c_str());
    }
    if (marked) {
      std::cout << "* the provider's default profile (`credctl default "
                   "PROVIDER PROFILE` changes it)\n";
    }
    return 0;
  }

  int Show() {
    auto provider = Provider();
    if (!provider) return UsageError("show needs a PROVIDER");
    v1::GetCredentialRequest req;
    req.set_provider(*provider);
    req.set_profile(args_.Flag("profile"));
    int64_t version = 0;
    if (!args_.Flag("version").empty() &&
        !absl::SimpleAtoi(args_.Flag("version"), &version)) {
      return UsageError("--version takes a number");
    }
    req.set_version(version);
    absl::StatusOr<v1::CredentialSummary> r = client_->GetCredential(req);
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      std::cout << ToJson(*r) << "\n";
      return 0;
    }
    std::cout << r->provider() << "/" << r->profile() << "  version "
              << r->version() << " of " << r->version_count() << "  "
              << ReadinessText(r->readiness()) << "\n"
              << "  created " << FormatTime(r->created_at()) << ", updated "
              << FormatTime(r->updated_at()) << ", rotation due "
              << FormatTime(r->rotation_due_at()) << " ("
              << DaysLeft(r->rotation_due_at()) << ")\n"
              << "  fingerprint " << r->fingerprint() << "\n";
    for (const auto& f : r->fields()) {
      std::cout << "  " << f.name() << ": "
                << (f.set() ? f.display() : std::string("(not set)"))
                << (f.sensitive() ? "  [secret]" : "") << "\n";
    }
    PrintFindings(r->findings());
    return 0;
  }

  int Set() {
    auto provider = Provider();
    if (!provider) return UsageError("set needs a PROVIDER");
    v1::PutCredentialRequest req;
    req.set_provider(*provider);
    req.set_profile(args_.Flag("profile"));
    req.set_keep_existing(args_.Switch("keep"));
    std::vector<std::string> prompt_for;
    if (absl::Status s = CollectFields(req.mutable_values(), &prompt_for);
        !s.ok()) {
      return UsageError(std::string(s.message()));
    }
    if (absl::Status s = ReadFromFile(req.mutable_from_file()); !s.ok()) {
      return PrintError(s);
    }
    for (const std::string& g : args_.All("generate")) req.add_generate(g);
    if (!args_.Flag("rotation_days").empty()) {
      int days = 0;
      if (!absl::SimpleAtoi(args_.Flag("rotation_days"), &days) || days <= 0) {
        return UsageError("--rotation_days takes a positive number of days");
      }
      req.mutable_rotation_period()->set_seconds(int64_t{days} * 86400);
    }

    // On a terminal, ask for the required fields that were not given.
    absl::StatusOr<v1::ListProvidersResponse> catalog =
        client_->ListProviders();
    if (!catalog.ok()) return PrintError(catalog.status());
    const v1::ProviderInfo* info = nullptr;
    for (const auto& p : catalog->providers()) {
      if (p.id() == *provider) info = &p;
    }
    if (info != nullptr && StdinIsTerminal() && req.from_file().empty() &&
        !req.keep_existing()) {
      for (const auto& f : info->fields()) {
        if (f.optional() || f.derived() || req.values().count(f.name()))
          continue;
        bool generated = false;
        for (const auto& g : req.generate()) generated |= g == f.name();
        if (generated) continue;
        if (f.multiline()) {
          auto path =
              Prompt(absl::StrCat(f.label(), " (path to the file)"), false);
          if (!path) return UsageError("input ended");
          absl::StatusOr<std::string> contents = ReadFile(*path);
          if (!contents.ok()) return PrintError(contents.status());
          (*req.mutable_values())[f.name()] = std::move(*contents);
          continue;
        }
        prompt_for.push_back(f.name());
      }
    }
    for (const std::string& name : prompt_for) {
      bool hidden = true;
      std::string label = name;
      if (info != nullptr) {
        for (const auto& f : info->fields()) {
          if (f.name() == name) {
            hidden = f.sensitive();
            label = f.label();
            if (!f.format_hint().empty())
              absl::StrAppend(&label, " (", f.format_hint(), ")");
          }
        }
      }
      if (!StdinIsTerminal()) {
        auto line = Prompt(label, false);
        if (!line)
          return UsageError(
              absl::StrCat("no value on standard input for ", name));
        (*req.mutable_values())[name] = *line;
        continue;
      }
      auto value = Prompt(label, hidden);
      if (!value) return UsageError("input ended");
      (*req.mutable_values())[name] = *value;
    }

    absl::StatusOr<v1::PutCredentialResponse> r = client_->PutCredential(req);
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      std::cout << ToJson(*r) << "\n";
      return 0;
    }
    const auto& c = r->credential();
    std::cout << "Stored " << c.provider() << "/" << c.profile() << " version "
              << c.version() << " (" << ReadinessText(c.readiness()) << ")\n";
    for (const auto& g : r->generated()) {
      std::cout << "  generated a strong random value for " << g << "\n";
    }
    PrintFindings(r->findings());
    return 0;
  }

  int Delete() {
    auto provider = Provider();
    if (!provider) return UsageError("delete needs a PROVIDER");
    v1::DeleteCredentialRequest req;
    req.set_provider(*provider);
    req.set_profile(args_.Flag("profile"));
    absl::StatusOr<v1::DeleteCredentialResponse> r =
        client_->DeleteCredential(req);
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      std::cout << ToJson(*r) << "\n";
      return 0;
    }
    std::cout << "Deleted " << *provider << "/"
              << (req.profile().empty() ? "default" : req.profile()) << " ("
              << r->versions_deleted() << " version"
              << (r->versions_deleted() == 1 ? "" : "s") << ")\n";
    return 0;
  }

  int Validate() {
    auto provider = Provider();
    if (!provider) return UsageError("validate needs a PROVIDER");
    v1::ValidateCredentialRequest req;
    req.set_provider(*provider);
    req.set_profile(args_.Flag("profile"));
    std::vector<std::string> prompt_for;
    if (absl::Status s = CollectFields(req.mutable_values(), &prompt_for);
        !s.ok()) {
      return UsageError(std::string(s.message()));
    }
    for (const std::string& name : prompt_for) {
      auto value = Prompt(name, StdinIsTerminal());
      if (!value) return UsageError(absl::StrCat("no value for ", name));
      (*req.mutable_values())[name] = *value;
    }
    if (absl::Status s = ReadFromFile(req.mutable_from_file()); !s.ok()) {
      return PrintError(s);
    }
    absl::StatusOr<v1::ValidateCredentialResponse> r =
        client_->ValidateCredential(req);
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      std::cout << ToJson(*r) << "\n";
      return r->valid() ? 0 : 1;
    }
    std::cout << *provider << ": " << (r->valid() ? "valid" : "NOT valid")
              << " (" << ReadinessText(r->readiness()) << ")\n";
    if (!r->missing_fields().empty()) {
      std::cout << "  missing: " << absl::StrJoin(r->missing_fields(), ", ")
                << "\n";
    }
    PrintFindings(r->findings());
    if (!r->required_permissions().empty()) {
      std::cout << "  check these permissions in the provider's console: "
                << absl::StrJoin(r->required_permissions(), "; ") << "\n";
    }
    return r->valid() ? 0 : 1;
  }

  int Needs() {
    if (args_.positional.empty())
      return UsageError("needs takes one or more TARGETs");
    v1::ResolveRequirementsRequest req;
    for (const auto& t : args_.positional) req.add_targets(t);
    req.set_profile(args_.Flag("profile"));
    req.set_resource(args_.Flag("resource"));
    absl::StatusOr<v1::ResolveRequirementsResponse> r =
        client_->ResolveRequirements(req);
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      std::cout << ToJson(*r) << "\n";
      return 0;
    }
    for (const auto& q : r->requirements()) {
      std::string source = q.profile_source();
      if (source == "binding") {
        source = absl::StrCat("bound to ", req.resource());
      } else if (source == "default") {
        source = "the default profile";
      }
      std::cout << q.provider() << "/" << q.profile()
                << (source.empty() ? "" : absl::StrCat(" (", source, ")"))
                << ": "
                << (q.configured() ? ReadinessText(q.readiness())
                                   : "not configured")
                << " — needed for " << q.reason() << "\n";
      if (!q.binding_note().empty())
        std::cout << "  note: " << q.binding_note() << "\n";
      if (!q.missing_fields().empty()) {
        std::cout << "  missing: " << absl::StrJoin(q.missing_fields(), ", ")
                  << "\n";
      }
      if (!q.required_permissions().empty()) {
        std::cout << "  permissions: "
                  << absl::StrJoin(q.required_permissions(), "; ") << "\n";
      }
    }
    return 0;
  }

  int VerifyAudit() {
    absl::StatusOr<v1::VerifyAuditLogResponse> r = client_->VerifyAuditLog();
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      std::cout << ToJson(*r) << "\n";
    } else if (r->intact()) {
      std::cout << "OK: the audit log is intact (" << r->events_checked()
                << " events chained)\n";
    } else {
      std::cout << "BROKEN at event " << r->broken_at_sequence() << ": " << r->problem()
                << "\n"
                << "  " << r->events_checked() << " events before it are intact.\n";
    }
    return r->intact() ? 0 : 1;
  }

  // pin set | clear | status.
  int Pin() {
    const std::string sub = args_.positional.empty() ? "" : args_.positional[0];
    if (args_.positional.size() != 1 || (sub != "set" && sub != "clear" && sub != "status")) {
      return UsageError("pin takes one of: set, clear, status");
    }
    absl::StatusOr<v1::ApprovalPinStatus> status = client_->GetApprovalPinStatus();
    if (!status.ok()) return PrintError(status.status());
    if (sub == "status") {
      if (json()) {
        std::cout << ToJson(*status) << "\n";
        return 0;
      }
      std::cout << (status->pin_set() ? "An approval PIN is set: every approval must carry it.\n"
                    : status->required()
                        ? "No approval PIN is set: approvals are refused until one is "
                          "(credctl pin set).\n"
                        : "No approval PIN is set.\n");
      if (!status->required()) {
        std::cout << "  WARNING: the broker runs with --approval_factor=none: approvals need "
                     "only the approver token, which an agent running as you can read.\n";
      }
      if (status->has_window_until()) {
        std::cout << "  this process may approve without it until "
                  << FormatTime(status->window_until()) << " UTC\n";
      }
      if (status->failed_attempts() > 0) {
        std::cout << "  wrong attempts since the last right one: " << status->failed_attempts()
                  << "\n";
      }
      if (status->has_locked_until()) {
        std::cout << "  approvals locked until " << FormatTime(status->locked_until())
                  << " UTC\n";
      }
      return 0;
    }
    v1::SetApprovalPinRequest req;
    if (status->pin_set()) {
      std::optional<std::string> current = ReadSecret(args_, "Current approval PIN");
      if (!current) return UsageError("no current PIN given");
      req.set_current_pin(*current);
      WipeString(*current);
    } else if (sub == "clear") {
      std::cout << "No approval PIN is set.\n";
      return 0;
    }
    if (sub == "set") {
      if (absl::Status s = ChooseApprovalPin(args_, *status, &req); !s.ok()) {
        WipeString(*req.mutable_current_pin());
        WipeString(*req.mutable_store_passphrase());
        return PrintError(s);
      }
    }
    absl::StatusOr<v1::SetApprovalPinResponse> r = client_->SetApprovalPin(req);
    WipeString(*req.mutable_current_pin());
    WipeString(*req.mutable_new_pin());
    WipeString(*req.mutable_store_passphrase());
    if (!r.ok()) return PrintError(r.status());
    std::cout << (r->pin_set() ? "Approval PIN set: every approval must now carry it.\n"
                               : "Approval PIN cleared.\n");
    return 0;
  }

  int Audit() {
    if (!args_.positional.empty() && args_.positional[0] == "verify") return VerifyAudit();
    if (!args_.positional.empty()) {
      return UsageError("audit takes no argument but `verify`");
    }
    v1::ListAuditEventsRequest req;
    req.set_provider(args_.Flag("provider"));
    req.set_kind(args_.Flag("kind"));
    for (const char* name : {"since", "until"}) {
      std::string text = args_.Flag(name);
      if (text.empty()) continue;
      absl::Time t;
      std::string err;
      if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
        return UsageError(absl::StrCat("--", name,
                                       " takes an RFC 3339 time such as "
                                       "2026-11-26T10:00:00Z: ",
                                       err));
      }
      auto* ts = std::string(name) == "since" ? req.mutable_since()
                                              : req.mutable_until();
      ts->set_seconds(absl::ToUnixSeconds(t));
    }
    v1::ListAuditEventsResponse all;
    while (true) {
      absl::StatusOr<v1::ListAuditEventsResponse> r =
          client_->ListAuditEvents(req);
      if (!r.ok()) return PrintError(r.status());
      for (auto& e : *r->mutable_events()) *all.add_events() = std::move(e);
      if (r->next_page_token().empty()) break;
      req.set_page_token(r->next_page_token());
    }
    if (json()) {
      std::cout << ToJson(all) << "\n";
      return 0;
    }
    for (const auto& e : all.events()) {
      std::cout << e.sequence() << "  "
                << absl::FormatTime("%Y-%m-%d %H:%M:%S",
                                    absl::FromUnixSeconds(e.time().seconds()),
                                    absl::UTCTimeZone())
                << "  " << e.kind() << "  "
                << (e.role().empty() ? "-" : e.role());
      if (!e.provider().empty())
        std::cout << "  " << e.provider() << "/" << e.profile();
      if (!e.action().empty()) std::cout << "  " << EscapeForTerminal(e.action());
      std::cout << "  " << e.outcome();
      if (!e.detail().empty()) std::cout << "  (" << EscapeForTerminal(e.detail()) << ")";
      std::cout << "\n";
    }
    return 0;
  }

  Args args_;
  std::unique_ptr<client::CredentialClient> client_;
};

// credctl speaks to the broker's Unix socket itself and leaves TLS to
// credctl-tls, the same program linked with gRPC's TLS (and so OpenSSL),
// installed beside it: for a TCP address it runs that in its place, with
// the same arguments, before reading anything. Returns only on failure.
int HandOverToTlsCompanion(char** argv, const std::string& address) {
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  std::string dir = n > 0 ? std::string(self, n) : std::string();
  dir = dir.substr(0, dir.find_last_of('/') + 1);
  const std::string companion = absl::StrCat(dir, "credctl-tls");
  execv(companion.c_str(), argv);
  const int err = errno;
  return PrintError(absl::FailedPreconditionError(absl::StrCat(
      "cannot run ", companion, " for a TLS connection to ", address, ": ",
      std::strerror(err),
      ". credctl-tls is built and installed beside credctl; reinstall both, "
      "or reach the broker on its Unix socket (--broker unix:PATH)")));
}

int Main(int argc, char** argv) {
  std::string error;
  std::optional<Args> args = Parse(argc, argv, error);
  if (!args) return UsageError(error);
  if (args->command.empty() || args->command == "help" ||
      args->Switch("help")) {
    std::cout << kUsage;
    return args->command.empty() && !args->Switch("help") ? 2 : 0;
  }
  Context ctx;
  ctx.data_dir = args->Flag("data_dir");
  if (ctx.data_dir.empty()) ctx.data_dir = DefaultDataDir();
  client::Options options;
  options.address =
      args->Flag("broker", absl::StrCat("unix:", ctx.data_dir, "/broker.sock"));
  const bool tcp = !absl::StartsWith(options.address, "unix:");
  options.insecure_plaintext = args->Switch("insecure_plaintext");
  if (tcp && !options.insecure_plaintext && !client::internal::TlsLinked()) {
    return HandOverToTlsCompanion(argv, options.address);
  }
  const bool as_agent = IsAgentCommand(args->command);
  std::string token_file = args->Flag(
      "token_file", absl::StrCat(ctx.data_dir, as_agent ? "/agent.token"
                                                        : "/approver.token"));
  absl::StatusOr<std::string> token = client::ReadTokenFile(token_file);
  if (!token.ok()) return PrintError(token.status());
  options.token = std::move(*token);
  options.tls_ca_file = args->Flag("tls_ca");
  if (tcp && options.tls_ca_file.empty() && !options.insecure_plaintext) {
    std::string generated = absl::StrCat(ctx.data_dir, "/tls.crt");
    if (access(generated.c_str(), R_OK) == 0) options.tls_ca_file = generated;
  }
  options.tls_cert_file = args->Flag("tls_cert");
  options.tls_key_file = args->Flag("tls_key");
  // For `request`, --timeout is how long to wait for the decision.
  if (!args->Flag("timeout").empty() && !as_agent) {
    int seconds = 0;
    if (!absl::SimpleAtoi(args->Flag("timeout"), &seconds) || seconds <= 0) {
      return UsageError("--timeout takes a positive number of seconds");
    }
    options.timeout = absl::Seconds(seconds);
  }
  (as_agent ? ctx.agent : ctx.approver) = options;
  if (IsFlowCommand(args->command)) return RunFlowCommand(*args, ctx);
  if (IsProviderCommand(args->command)) return RunProviderCommand(*args, ctx);
  if (IsPasskeyCommand(args->command)) return RunPasskeyCommand(*args, ctx);
  if (IsLockCommand(args->command)) return RunLockCommand(*args, ctx);
  absl::StatusOr<std::unique_ptr<client::CredentialClient>> c =
      client::CredentialClient::Connect(options);
  if (!c.ok()) return PrintError(c.status());
  return Cli(std::move(*args), std::move(*c)).Run();
}

}  // namespace
}  // namespace cli
}  // namespace credbroker

int main(int argc, char** argv) {
  // credctl makes one or two calls and exits; what follows keeps it close
  // to git's credential helpers in process time (docs/BENCHMARKS.md).
#ifdef NDEBUG
  // Debian's Abseil runs its debug deadlock detector on every Mutex
  // acquisition: off in optimized builds, as in the daemon.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
#if !defined(ABSL_HAVE_ADDRESS_SANITIZER) && !defined(ABSL_HAVE_THREAD_SANITIZER) && \
    !defined(ABSL_HAVE_LEAK_SANITIZER) && !defined(ABSL_HAVE_MEMORY_SANITIZER)
  // The process holds the gRPC runtime until it exits: dropping the last
  // channel then does not shut the runtime down (joining its threads,
  // freeing its state) a moment before the kernel does the same, and the
  // exit skips the static destructors. Likewise its channels: they are
  // held until the exit, not shut down when the command is done with them.
  // Output is flushed first. Sanitizer builds take the ordinary exit, so
  // that the leak checker still runs; the Bazel build's integration tests
  // run this path.
  grpc_init();
  credbroker::client::internal::KeepChannelsUntilExit();
  const int code = credbroker::cli::Main(argc, argv);
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(code);
#else
  // Sanitizer builds take the ordinary exit, after waiting for a complete
  // shutdown of the gRPC runtime, so that the leak checker does not run
  // while gRPC's threads are still tearing a TLS connection down (the CI
  // runs saw a 904-byte OpenSSL allocation reported as leaked in
  // SecurityTest.TcpServesTlsWithAGeneratedCertificate).
  grpc_init();
  const int code = credbroker::cli::Main(argc, argv);
  grpc_shutdown_blocking();
  return code;
#endif
}
