#include "client/cli/commands_provider.h"

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "client/credbroker/client.h"
#include "client/internal/convert.h"
#include "common/json.h"

namespace credbroker {
namespace cli {
namespace {

std::string BindingStateText(client::BindingState s) {
  return absl::AsciiStrToLower(
      absl::StripPrefix(client::BindingStateName(s), "STATE_"));
}

// "--version N" as a positive number; 0 when absent or not one.
int64_t VersionFlag(const Args& args) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(args.Flag("version"), &v) || v <= 0) return 0;
  return v;
}

class ProviderCli {
 public:
  ProviderCli(const Args& args, std::unique_ptr<client::CredentialClient> c)
      : args_(args), client_(std::move(c)) {}

  int Run() {
    const std::string& c = args_.command;
    if (c == "doctor") return Doctor();
    if (c == "history") return History();
    if (c == "rollback") return Rollback();
    if (c == "default") return Default();
    if (c == "bindings") return Bindings();
    return UsageError(absl::StrCat("unknown command \"", c, "\""));
  }

 private:
  bool json() const { return args_.Switch("json"); }

  // Every stored credential of `provider` (every provider when empty).
  absl::StatusOr<std::vector<client::CredentialSummary>> ListStored(
      const std::string& provider) {
    client::ListCredentialsOptions req;
    req.provider = provider;
    std::vector<client::CredentialSummary> out;
    while (true) {
      absl::StatusOr<client::CredentialPage> r = client_->ListCredentials(req);
      if (!r.ok()) return r.status();
      for (auto& c : r->credentials) out.push_back(std::move(c));
      if (r->next_page_token.empty()) return out;
      req.page_token = r->next_page_token;
    }
  }

  // --- doctor ---

  struct Diagnosis {
    std::string provider;
    client::Diagnosis response;
  };

  void PrintDiagnosis(const Diagnosis& d) {
    const client::Diagnosis& r = d.response;
    const bool ready = r.readiness == client::Readiness::kReady;
    std::cout << d.provider << "/" << r.profile << ": "
              << ReadinessText(r.readiness) << (ready ? "" : " — not ready")
              << "\n";
    if (!r.missing_fields.empty()) {
      std::cout << "  missing: " << absl::StrJoin(r.missing_fields, ", ")
                << " (add with `credctl set " << d.provider << " --profile "
                << r.profile << " --keep --field NAME`)\n";
    }
    PrintFindings(r.findings);
    if (!r.manual_checks.empty()) {
      std::cout << "  if it still fails, check in the provider's console:\n";
      for (const std::string& c : r.manual_checks)
        std::cout << "    - " << c << "\n";
    }
    if (!r.required_permissions.empty()) {
      std::cout << "  permissions it needs:\n";
      for (const std::string& p : r.required_permissions)
        std::cout << "    - " << p << "\n";
    }
  }

  // What doctor says about the store's key itself: a key file is readable
  // by every process running as the user, an agent too. "" when fine (or
  // when the broker cannot say).
  std::string StoreKeyWarning() {
    absl::StatusOr<client::LockState> state = client_->GetLockState();
    if (!state.ok() || state->key_source != client::KeySource::kKeyFile)
      return "";
    return absl::StrCat(
        "the store's key is the file ", state->key_file,
        ": an agent running as you can read it and open every stored secret. "
        "Protect "
        "the store with a passphrase: credctl rekey --to=passphrase");
  }

  using Target = std::pair<std::string, std::string>;  // provider, profile

  // Which provider/profile pairs doctor diagnoses: the one named, else
  // every stored one (of `provider` when named, of --profile when given).
  absl::StatusOr<std::vector<Target>> DoctorTargets(
      const std::string& provider) {
    const std::string profile = args_.Flag("profile");
    std::vector<Target> targets;
    if (!provider.empty() && args_.Has("profile")) {
      targets.emplace_back(provider, profile);
      return targets;
    }
    absl::StatusOr<std::vector<client::CredentialSummary>> stored =
        ListStored(provider);
    if (!stored.ok()) return stored.status();
    for (const client::CredentialSummary& c : *stored) {
      if (args_.Has("profile") && c.profile != profile) continue;
      targets.emplace_back(c.provider, c.profile);
    }
    return targets;
  }

  absl::StatusOr<std::vector<Diagnosis>> Diagnose(
      const std::vector<Target>& targets) {
    std::vector<Diagnosis> results;
    for (const auto& [provider, profile] : targets) {
      client::CredentialCandidate req;
      req.provider = provider;
      req.profile = profile;
      absl::StatusOr<client::Diagnosis> r = client_->ValidateCredential(req);
      if (!r.ok()) return r.status();
      results.push_back({provider, std::move(*r)});
    }
    return results;
  }

  void PrintDoctorJson(const std::vector<Diagnosis>& results, bool all_ready,
                       const std::string& store_warning) {
    std::vector<std::string> items;
    for (const Diagnosis& d : results) {
      items.push_back(absl::StrCat(
          "{\"provider\": ", JsonQuote(d.provider), ", \"diagnosis\": ",
          ToJson(client::internal::AsProto<v1::ValidateCredentialResponse>(
                     d.response),
                 /*compact=*/true),
          "}"));
    }
    std::cout << "{\"all_ready\": " << (all_ready ? "true" : "false")
              << ", \"store_warning\": " << JsonQuote(store_warning)
              << ", \"credentials\": [" << absl::StrJoin(items, ",\n  ")
              << "]}\n";
  }

  void PrintDoctorText(const std::vector<Diagnosis>& results,
                       const std::string& provider, int not_ready) {
    if (results.empty()) {
      if (!provider.empty()) {
        std::cout << provider << ": nothing stored. Add it with `credctl set "
                  << provider << "`.\n";
      } else if (args_.Has("profile")) {
        std::cout << "No credentials stored under profile "
                  << args_.Flag("profile") << ".\n";
      } else {
        std::cout << "No credentials configured. Add one with "
                     "`credctl set PROVIDER`.\n";
      }
      return;
    }
    for (const Diagnosis& d : results) PrintDiagnosis(d);
    if (results.size() > 1) {
      std::cout << results.size() << " credentials checked; "
                << (not_ready == 0 ? "all ready"
                                   : absl::StrCat(not_ready, " not ready"))
                << ".\n";
    }
  }

  // Exit code 1 when a credential is not ready, or nothing is stored for a
  // provider that was named (it cannot be ready).
  int Doctor() {
    if (args_.positional.size() > 1)
      return UsageError("doctor takes at most one PROVIDER");
    const std::string provider =
        args_.positional.empty() ? "" : args_.positional[0];
    const std::string store_warning = StoreKeyWarning();
    if (!store_warning.empty() && !json())
      std::cout << "warning: " << store_warning << "\n";
    absl::StatusOr<std::vector<Target>> targets = DoctorTargets(provider);
    if (!targets.ok()) return PrintError(targets.status());
    absl::StatusOr<std::vector<Diagnosis>> results = Diagnose(*targets);
    if (!results.ok()) return PrintError(results.status());
    int not_ready = 0;
    for (const Diagnosis& d : *results) {
      if (d.response.readiness != client::Readiness::kReady) ++not_ready;
    }
    const bool named_but_empty = !provider.empty() && results->empty();
    const int code = (not_ready > 0 || named_but_empty) ? 1 : 0;
    if (json()) {
      PrintDoctorJson(*results, code == 0, store_warning);
    } else {
      PrintDoctorText(*results, provider, not_ready);
    }
    return code;
  }

  // --- history, rollback ---

  int History() {
    if (args_.positional.size() != 1)
      return UsageError("history takes one PROVIDER");
    absl::StatusOr<client::CredentialHistory> r =
        client_->ListCredentialVersions(args_.positional[0],
                                        args_.Flag("profile"));
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      std::cout
          << ToJson(
                 client::internal::AsProto<v1::ListCredentialVersionsResponse>(
                     *r))
          << "\n";
      return 0;
    }
    std::cout << r->provider << "/" << r->profile << ": " << r->versions.size()
              << " version" << (r->versions.size() == 1 ? "" : "s")
              << " (fingerprints only, never values)\n";
    std::printf("%4s  %-16s  %s\n", "VER", "CREATED (UTC)", "FINGERPRINT");
    for (const client::CredentialVersion& v : r->versions) {
      std::string notes;
      if (v.current) notes += "  (current)";
      if (v.rotation_period != absl::ZeroDuration()) {
        absl::StrAppend(&notes, "  rotation every ",
                        absl::ToInt64Seconds(v.rotation_period) / 86400, "d");
      }
      std::printf("%4lld  %-16s  %s%s\n", static_cast<long long>(v.version),
                  TimeText(v.created_at).c_str(), v.fingerprint.c_str(),
                  notes.c_str());
    }
    return 0;
  }

  int Rollback() {
    if (args_.positional.size() != 1)
      return UsageError("rollback takes one PROVIDER");
    const int64_t version = VersionFlag(args_);
    if (version == 0)
      return UsageError("rollback needs --version N (see `credctl history`)");
    absl::StatusOr<client::RolledBackCredential> r =
        client_->RollbackCredential(args_.positional[0], args_.Flag("profile"),
                                    version);
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      std::cout
          << ToJson(
                 client::internal::AsProto<v1::RollbackCredentialResponse>(*r))
          << "\n";
      return 0;
    }
    const client::CredentialSummary& c = r->credential;
    std::cout << "Restored " << c.provider << "/" << c.profile << " version "
              << r->restored_version << " as version " << c.version << " ("
              << ReadinessText(c.readiness) << "), fingerprint "
              << c.fingerprint << "\n";
    PrintFindings(r->findings);
    return 0;
  }

  // --- default ---

  int Default() {
    if (args_.positional.empty() || args_.positional.size() > 2)
      return UsageError("default takes PROVIDER [PROFILE]");
    const std::string& provider = args_.positional[0];
    if (args_.positional.size() == 2) {
      absl::StatusOr<client::DefaultProfileChange> r =
          client_->SetDefaultProfile(provider, args_.positional[1]);
      if (!r.ok()) return PrintError(r.status());
      if (json()) {
        std::cout
            << ToJson(
                   client::internal::AsProto<v1::SetDefaultProfileResponse>(*r))
            << "\n";
        return 0;
      }
      std::cout << r->provider << ": the default profile is now " << r->profile
                << " (was " << r->previous_profile << ")\n";
      if (!r->configured) {
        std::cout << "  nothing is stored under " << r->profile
                  << " yet: `credctl set " << r->provider << " --profile "
                  << r->profile << "`\n";
      }
      return 0;
    }
    absl::StatusOr<std::vector<client::ProviderInfo>> providers =
        client_->ListProviders();
    if (!providers.ok()) return PrintError(providers.status());
    const client::ProviderInfo* info = nullptr;
    for (const client::ProviderInfo& p : *providers) {
      if (p.id == provider) info = &p;
    }
    if (info == nullptr) {
      return PrintError(absl::NotFoundError(
          absl::StrCat("unknown provider \"", provider,
                       "\"; `credctl providers` lists them")));
    }
    absl::StatusOr<std::vector<client::CredentialSummary>> stored =
        ListStored(provider);
    if (!stored.ok()) return PrintError(stored.status());
    client::DefaultProfileChange shown;  // As `default P PROFILE` prints.
    shown.provider = provider;
    shown.profile = info->default_profile;
    for (const client::CredentialSummary& c : *stored) {
      if (c.profile == shown.profile) shown.configured = true;
    }
    if (json()) {
      std::cout << ToJson(
                       client::internal::AsProto<v1::SetDefaultProfileResponse>(
                           shown))
                << "\n";
      return 0;
    }
    std::cout << provider << ": the default profile is " << shown.profile
              << (shown.configured ? "" : " (nothing stored under it yet)")
              << "\n";
    return 0;
  }

  // --- bindings ---

  int Bindings() {
    if (args_.positional.size() > 1)
      return UsageError("bindings takes at most one PROVIDER");
    absl::StatusOr<std::vector<client::ResourceBinding>> r =
        client_->ListBindings(args_.positional.empty() ? ""
                                                       : args_.positional[0]);
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      std::cout << ToJson(
                       client::internal::AsProto<v1::ListBindingsResponse>(*r))
                << "\n";
      return 0;
    }
    if (r->empty()) {
      std::cout << "No resource bindings. A grant for a need whose context "
                   "names a resource (resource=, cluster= or cluster_id=) "
                   "records one.\n";
      return 0;
    }
    std::printf("%-20s %-24s %3s  %-15s %-16s %s\n", "RESOURCE",
                "PROVIDER/PROFILE", "VER", "STATE", "BOUND (UTC)", "GRANT");
    for (const client::ResourceBinding& b : *r) {
      std::printf("%-20s %-24s %3lld  %-15s %-16s %s\n", b.resource.c_str(),
                  absl::StrCat(b.provider, "/", b.profile).c_str(),
                  static_cast<long long>(b.credential_version),
                  BindingStateText(b.state).c_str(),
                  TimeText(b.created_at).c_str(), b.grant_id.c_str());
      if (!b.note.empty()) std::cout << "  note: " << b.note << "\n";
    }
    return 0;
  }

  const Args& args_;
  std::unique_ptr<client::CredentialClient> client_;
};

}  // namespace

bool IsProviderCommand(const std::string& c) {
  return c == "doctor" || c == "history" || c == "rollback" || c == "default" ||
         c == "bindings";
}

int RunProviderCommand(const Args& args, const Context& ctx) {
  absl::StatusOr<std::unique_ptr<client::CredentialClient>> c =
      client::CredentialClient::Connect(ctx.approver);
  if (!c.ok()) return PrintError(c.status());
  return ProviderCli(args, std::move(*c)).Run();
}

}  // namespace cli
}  // namespace credbroker
