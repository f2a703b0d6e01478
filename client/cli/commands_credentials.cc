// credctl's commands about stored credentials (commands_credentials.h):
// providers, list, show, set (with its prompts for missing fields),
// delete, validate and needs.
#include "client/cli/commands_credentials.h"

#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/internal/convert.h"
#include "common/files.h"

namespace credbroker {
namespace cli {
namespace {

// The list's ROTATE IN column, from the broker's whole days.
std::string RotateIn(const client::CredentialSummary& c) {
  if (c.rotation_due_at == absl::InfinitePast()) return "-";
  if (c.days_until_rotation < 0)
    return absl::StrCat("overdue ", -c.days_until_rotation, "d");
  if (c.days_until_rotation == 0) return "due";
  return absl::StrCat(c.days_until_rotation, "d");
}

std::string DaysLeft(absl::Time due) {
  if (due == absl::InfinitePast()) return "-";
  int64_t days =
      (absl::ToUnixSeconds(due) - absl::ToUnixSeconds(absl::Now())) / 86400;
  if (days < 0) return absl::StrCat("overdue ", -days, "d");
  return absl::StrCat(days, "d");
}

class CredentialCli {
 public:
  CredentialCli(const Args& args, client::CredentialClient* client)
      : args_(args), client_(client) {}

  int Run() {
    const std::string& c = args_.command;
    if (c == "providers") return Providers();
    if (c == "list") return List();
    if (c == "show") return Show();
    if (c == "set") return Set();
    if (c == "delete") return Delete();
    if (c == "validate") return Validate();
    if (c == "needs") return Needs();
    return UsageError(absl::StrCat("unknown command \"", c, "\""));
  }

 private:
  bool json() const { return args_.Switch("json"); }

  std::optional<std::string> Provider() {
    if (args_.positional.empty()) return std::nullopt;
    return args_.positional[0];
  }

  // --field NAME=VALUE and --field NAME (prompted, hidden).
  absl::Status CollectFields(FieldValues* values,
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
      (*values)[f.substr(0, eq)] =
          SecretBytes(absl::string_view(f).substr(eq + 1));
    }
    return absl::OkStatus();
  }

  absl::Status ReadFromFile(SecretBytes* out) {
    std::string path = args_.Flag("from_file");
    if (path.empty()) return absl::OkStatus();
    absl::StatusOr<std::string> contents = ReadFile(path);
    if (!contents.ok()) return contents.status();
    *out = SecretBytes::TakeFrom(*contents);
    return absl::OkStatus();
  }

  int Providers() {
    absl::StatusOr<std::vector<client::ProviderInfo>> r =
        client_->ListProviders();
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      std::cout << ToJson(
                       client::internal::AsProto<v1::ListProvidersResponse>(*r))
                << "\n";
      return 0;
    }
    for (const client::ProviderInfo& p : *r) {
      std::cout << p.id << " — " << p.display_name << "\n";
      if (p.oauth)
        std::cout << "  connects through the provider's OAuth flow\n";
      if (p.arbitrary_fields)
        std::cout << "  any named secrets of your application\n";
      for (const client::FieldSpec& f : p.fields) {
        std::cout << "  " << f.name << (f.optional ? " (optional)" : "")
                  << (f.sensitive ? " [secret]" : "") << " — " << f.label;
        if (!f.default_value.empty())
          std::cout << ", default " << f.default_value;
        std::cout << "\n";
      }
      if (!p.required_permissions.empty()) {
        std::cout << "  permissions: "
                  << absl::StrJoin(p.required_permissions, "; ") << "\n";
      }
    }
    return 0;
  }

  int List() {
    client::ListCredentialsOptions req;
    if (auto p = Provider()) req.provider = *p;
    client::CredentialPage all;
    while (true) {
      absl::StatusOr<client::CredentialPage> r = client_->ListCredentials(req);
      if (!r.ok()) return PrintError(r.status());
      for (auto& c : r->credentials) all.credentials.push_back(std::move(c));
      if (r->next_page_token.empty()) break;
      req.page_token = r->next_page_token;
    }
    if (json()) {
      std::cout
          << ToJson(client::internal::AsProto<v1::ListCredentialsResponse>(all))
          << "\n";
      return 0;
    }
    if (all.credentials.empty()) {
      std::cout << "No credentials configured. Add one with `credctl set "
                   "PROVIDER`.\n";
      return 0;
    }
    std::printf("%-14s %-12s %4s  %-13s %-16s %-9s %-16s %s\n", "PROVIDER",
                "PROFILE", "VER", "READINESS", "UPDATED", "ROTATE IN",
                "EXPIRES", "FIELDS");
    bool marked = false;
    for (const client::CredentialSummary& c : all.credentials) {
      std::vector<std::string> fields;
      for (const client::MaskedField& f : c.fields) {
        if (f.set) fields.push_back(absl::StrCat(f.name, "=", f.display));
      }
      marked |= c.is_default;
      std::printf(
          "%-14s %-12s %4lld  %-13s %-16s %-9s %-16s %s\n", c.provider.c_str(),
          absl::StrCat(c.profile, c.is_default ? "*" : "").c_str(),
          static_cast<long long>(c.version), ReadinessText(c.readiness).c_str(),
          TimeText(c.updated_at).c_str(), RotateIn(c).c_str(),
          TimeText(c.expires_at).c_str(), absl::StrJoin(fields, " ").c_str());
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
    int64_t version = 0;
    if (!args_.Flag("version").empty() &&
        !absl::SimpleAtoi(args_.Flag("version"), &version)) {
      return UsageError("--version takes a number");
    }
    absl::StatusOr<client::CredentialSummary> r =
        client_->GetCredential(*provider, args_.Flag("profile"), version);
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      std::cout << ToJson(client::internal::AsProto<v1::CredentialSummary>(*r))
                << "\n";
      return 0;
    }
    std::cout << r->provider << "/" << r->profile << "  version " << r->version
              << " of " << r->version_count << "  "
              << ReadinessText(r->readiness) << "\n"
              << "  created " << TimeText(r->created_at) << ", updated "
              << TimeText(r->updated_at) << ", rotation due "
              << TimeText(r->rotation_due_at) << " ("
              << DaysLeft(r->rotation_due_at) << ")\n"
              << "  fingerprint " << r->fingerprint << "\n";
    for (const client::MaskedField& f : r->fields) {
      std::cout << "  " << f.name << ": "
                << (f.set ? f.display : std::string("(not set)"))
                << (f.sensitive ? "  [secret]" : "") << "\n";
    }
    PrintFindings(r->findings);
    return 0;
  }

  // Set's request from the arguments, and in `prompt_for` the fields
  // named to be prompted for. An exit code when they are not usable.
  std::optional<int> SetRequest(const std::string& provider,
                                client::CredentialInput* out,
                                std::vector<std::string>* prompt_for) {
    client::CredentialInput& req = *out;
    req.provider = provider;
    req.profile = args_.Flag("profile");
    req.keep_existing = args_.Switch("keep");
    if (absl::Status s = CollectFields(&req.values, prompt_for); !s.ok()) {
      return UsageError(std::string(s.message()));
    }
    if (absl::Status s = ReadFromFile(&req.from_file); !s.ok()) {
      return PrintError(s);
    }
    req.generate = args_.All("generate");
    if (!args_.Flag("rotation_days").empty()) {
      int days = 0;
      if (!absl::SimpleAtoi(args_.Flag("rotation_days"), &days) || days <= 0) {
        return UsageError("--rotation_days takes a positive number of days");
      }
      req.rotation_period = absl::Hours(int64_t{days} * 24);
    }
    return std::nullopt;
  }

  // The required fields of `info` that were neither given nor generated:
  // a file's path is asked for and read at once, the others are added to
  // `prompt_for`. An exit code when that fails.
  std::optional<int> AskRequired(const client::ProviderInfo& info,
                                 client::CredentialInput* out,
                                 std::vector<std::string>* prompt_for) {
    client::CredentialInput& req = *out;
    for (const client::FieldSpec& f : info.fields) {
      if (f.optional || f.derived || req.values.count(f.name)) continue;
      bool generated = false;
      for (const auto& g : req.generate) generated |= g == f.name;
      if (generated) continue;
      if (f.multiline) {
        auto path = Prompt(absl::StrCat(f.label, " (path to the file)"), false);
        if (!path) return UsageError("input ended");
        absl::StatusOr<std::string> contents = ReadFile(*path);
        if (!contents.ok()) return PrintError(contents.status());
        req.values[f.name] = SecretBytes::TakeFrom(*contents);
        continue;
      }
      prompt_for->push_back(f.name);
    }
    return std::nullopt;
  }

  // Asks for each field of `prompt_for` (hidden when `info` says secret),
  // or reads one line each from standard input without a terminal. An exit
  // code when the input ends.
  std::optional<int> PromptFields(const client::ProviderInfo* info,
                                  const std::vector<std::string>& prompt_for,
                                  client::CredentialInput* out) {
    client::CredentialInput& req = *out;
    for (const std::string& name : prompt_for) {
      bool hidden = true;
      std::string label = name;
      if (info != nullptr) {
        for (const client::FieldSpec& f : info->fields) {
          if (f.name == name) {
            hidden = f.sensitive;
            label = f.label;
            if (!f.format_hint.empty())
              absl::StrAppend(&label, " (", f.format_hint, ")");
          }
        }
      }
      if (!StdinIsTerminal()) {
        auto line = Prompt(label, false);
        if (!line)
          return UsageError(
              absl::StrCat("no value on standard input for ", name));
        req.values[name] = SecretBytes::TakeFrom(*line);
        continue;
      }
      auto value = Prompt(label, hidden);
      if (!value) return UsageError("input ended");
      req.values[name] = SecretBytes::TakeFrom(*value);
    }
    return std::nullopt;
  }

  int Set() {
    auto provider = Provider();
    if (!provider) return UsageError("set needs a PROVIDER");
    client::CredentialInput req;
    std::vector<std::string> prompt_for;
    if (std::optional<int> code = SetRequest(*provider, &req, &prompt_for)) {
      return *code;
    }

    // On a terminal, ask for the required fields that were not given.
    absl::StatusOr<std::vector<client::ProviderInfo>> catalog =
        client_->ListProviders();
    if (!catalog.ok()) return PrintError(catalog.status());
    const client::ProviderInfo* info = nullptr;
    for (const client::ProviderInfo& p : *catalog) {
      if (p.id == *provider) info = &p;
    }
    if (info != nullptr && StdinIsTerminal() && req.from_file.empty() &&
        !req.keep_existing) {
      if (std::optional<int> code = AskRequired(*info, &req, &prompt_for)) {
        return *code;
      }
    }
    if (std::optional<int> code = PromptFields(info, prompt_for, &req)) {
      return *code;
    }

    absl::StatusOr<client::StoredCredential> r = client_->PutCredential(req);
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      std::cout << ToJson(
                       client::internal::AsProto<v1::PutCredentialResponse>(*r))
                << "\n";
      return 0;
    }
    const client::CredentialSummary& c = r->credential;
    std::cout << "Stored " << c.provider << "/" << c.profile << " version "
              << c.version << " (" << ReadinessText(c.readiness) << ")\n";
    for (const auto& g : r->generated) {
      std::cout << "  generated a strong random value for " << g << "\n";
    }
    PrintFindings(r->findings);
    return 0;
  }

  int Delete() {
    auto provider = Provider();
    if (!provider) return UsageError("delete needs a PROVIDER");
    const std::string profile = args_.Flag("profile");
    absl::StatusOr<int64_t> r = client_->DeleteCredential(*provider, profile);
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      v1::DeleteCredentialResponse m;
      m.set_versions_deleted(*r);
      std::cout << ToJson(m) << "\n";
      return 0;
    }
    std::cout << "Deleted " << *provider << "/"
              << (profile.empty() ? "default" : profile) << " (" << *r
              << " version" << (*r == 1 ? "" : "s") << ")\n";
    return 0;
  }

  int Validate() {
    auto provider = Provider();
    if (!provider) return UsageError("validate needs a PROVIDER");
    client::CredentialCandidate req;
    req.provider = *provider;
    req.profile = args_.Flag("profile");
    std::vector<std::string> prompt_for;
    if (absl::Status s = CollectFields(&req.values, &prompt_for); !s.ok()) {
      return UsageError(std::string(s.message()));
    }
    for (const std::string& name : prompt_for) {
      auto value = Prompt(name, StdinIsTerminal());
      if (!value) return UsageError(absl::StrCat("no value for ", name));
      req.values[name] = SecretBytes::TakeFrom(*value);
    }
    if (absl::Status s = ReadFromFile(&req.from_file); !s.ok()) {
      return PrintError(s);
    }
    absl::StatusOr<client::Diagnosis> r = client_->ValidateCredential(req);
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      std::cout
          << ToJson(
                 client::internal::AsProto<v1::ValidateCredentialResponse>(*r))
          << "\n";
      return r->valid ? 0 : 1;
    }
    std::cout << *provider << ": " << (r->valid ? "valid" : "NOT valid") << " ("
              << ReadinessText(r->readiness) << ")\n";
    if (!r->missing_fields.empty()) {
      std::cout << "  missing: " << absl::StrJoin(r->missing_fields, ", ")
                << "\n";
    }
    PrintFindings(r->findings);
    if (!r->required_permissions.empty()) {
      std::cout << "  check these permissions in the provider's console: "
                << absl::StrJoin(r->required_permissions, "; ") << "\n";
    }
    return r->valid ? 0 : 1;
  }

  int Needs() {
    if (args_.positional.empty())
      return UsageError("needs takes one or more TARGETs");
    const std::string resource = args_.Flag("resource");
    absl::StatusOr<std::vector<client::Requirement>> r =
        client_->ResolveRequirements(args_.positional, args_.Flag("profile"),
                                     resource);
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      std::cout
          << ToJson(
                 client::internal::AsProto<v1::ResolveRequirementsResponse>(*r))
          << "\n";
      return 0;
    }
    for (const client::Requirement& q : *r) {
      std::string source = q.profile_source;
      if (source == "binding") {
        source = absl::StrCat("bound to ", resource);
      } else if (source == "default") {
        source = "the default profile";
      }
      std::cout << q.provider << "/" << q.profile
                << (source.empty() ? "" : absl::StrCat(" (", source, ")"))
                << ": "
                << (q.configured ? ReadinessText(q.readiness)
                                 : "not configured")
                << " — needed for " << q.reason << "\n";
      if (!q.binding_note.empty())
        std::cout << "  note: " << q.binding_note << "\n";
      if (!q.missing_fields.empty()) {
        std::cout << "  missing: " << absl::StrJoin(q.missing_fields, ", ")
                  << "\n";
      }
      if (!q.required_permissions.empty()) {
        std::cout << "  permissions: "
                  << absl::StrJoin(q.required_permissions, "; ") << "\n";
      }
    }
    return 0;
  }

  const Args& args_;
  client::CredentialClient* client_;
};

}  // namespace

bool IsCredentialCommand(const std::string& c) {
  return c == "providers" || c == "list" || c == "show" || c == "set" ||
         c == "delete" || c == "validate" || c == "needs";
}

int RunCredentialCommand(const Args& args, client::CredentialClient& client) {
  return CredentialCli(args, &client).Run();
}

}  // namespace cli
}  // namespace credbroker
