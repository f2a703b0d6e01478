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
#include "common/files.h"

namespace credbroker {
namespace cli {
namespace {

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

  // Set's request from the arguments, and in `prompt_for` the fields
  // named to be prompted for. An exit code when they are not usable.
  std::optional<int> SetRequest(const std::string& provider,
                                v1::PutCredentialRequest* out,
                                std::vector<std::string>* prompt_for) {
    v1::PutCredentialRequest& req = *out;
    req.set_provider(provider);
    req.set_profile(args_.Flag("profile"));
    req.set_keep_existing(args_.Switch("keep"));
    if (absl::Status s = CollectFields(req.mutable_values(), prompt_for);
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
    return std::nullopt;
  }

  // The required fields of `info` that were neither given nor generated:
  // a file's path is asked for and read at once, the others are added to
  // `prompt_for`. An exit code when that fails.
  std::optional<int> AskRequired(const v1::ProviderInfo& info,
                                 v1::PutCredentialRequest* out,
                                 std::vector<std::string>* prompt_for) {
    v1::PutCredentialRequest& req = *out;
    for (const auto& f : info.fields()) {
      if (f.optional() || f.derived() || req.values().count(f.name())) continue;
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
      prompt_for->push_back(f.name());
    }
    return std::nullopt;
  }

  // Asks for each field of `prompt_for` (hidden when `info` says secret),
  // or reads one line each from standard input without a terminal. An exit
  // code when the input ends.
  std::optional<int> PromptFields(const v1::ProviderInfo* info,
                                  const std::vector<std::string>& prompt_for,
                                  v1::PutCredentialRequest* out) {
    v1::PutCredentialRequest& req = *out;
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
    return std::nullopt;
  }

  int Set() {
    auto provider = Provider();
    if (!provider) return UsageError("set needs a PROVIDER");
    v1::PutCredentialRequest req;
    std::vector<std::string> prompt_for;
    if (std::optional<int> code = SetRequest(*provider, &req, &prompt_for)) {
      return *code;
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
      if (std::optional<int> code = AskRequired(*info, &req, &prompt_for)) {
        return *code;
      }
    }
    if (std::optional<int> code = PromptFields(info, prompt_for, &req)) {
      return *code;
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
