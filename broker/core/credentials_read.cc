// CredentialManager's reads (credentials.h): Get, GetValues, List with its
// page tokens, and ResolveRequirements, which says what deploy targets need
// and whether it is ready.
#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "broker/common/status_macros.h"
#include "broker/core/credentials.h"
#include "broker/core/credentials_internal.h"
#include "common/errors.h"

namespace credbroker {

namespace {

std::string EncodePageToken(const CredentialRecord& last) {
  return absl::WebSafeBase64Escape(
      absl::StrCat(last.provider, std::string(1, '\0'), last.profile));
}

absl::Status DecodePageToken(absl::string_view token, std::string& provider,
                             std::string& profile) {
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw)) {
    return InvalidArgumentWithViolations(
        "page_token is not valid",
        {{"page_token",
          "pass the next_page_token of the previous response "
          "unchanged, or leave it empty for the first page"}});
  }
  std::vector<std::string> parts = absl::StrSplit(raw, '\0');
  if (parts.size() != 2) {
    return InvalidArgumentWithViolations(
        "page_token is not valid",
        {{"page_token",
          "pass the next_page_token of the previous response "
          "unchanged, or leave it empty for the first page"}});
  }
  provider = parts[0];
  profile = parts[1];
  return absl::OkStatus();
}

// Words that name a provider in a deploy target, for ResolveRequirements.
struct TargetWord {
  const char* word;
  const char* provider;
  const char* reason;
};
constexpr TargetWord kTargetWords[] = {
    {"aws", "aws", "creating clusters on AWS"},
    {"amazon", "aws", "creating clusters on AWS"},
    {"ec2", "aws", "creating clusters on AWS"},
    {"gcp", "gcp", "creating clusters on Google Cloud"},
    {"google", "gcp", "creating clusters on Google Cloud"},
    {"gke", "gcp", "creating clusters on Google Cloud"},
    {"azure", "azure", "creating clusters on Azure"},
    {"digitalocean", "digitalocean", "creating clusters on DigitalOcean"},
    {"do", "digitalocean", "creating clusters on DigitalOcean"},
    {"mongodb", "mongodb-atlas", "using MongoDB Atlas for a database"},
    {"mongodb-atlas", "mongodb-atlas", "using MongoDB Atlas for a database"},
    {"atlas", "mongodb-atlas", "using MongoDB Atlas for a database"},
    {"redis", "redis-cloud", "using Redis Cloud"},
    {"redis-cloud", "redis-cloud", "using Redis Cloud"},
    {"netlify", "netlify", "deploying a frontend to Netlify"},
    {"auth0", "auth0", "using Auth0 for authentication"},
    {"vercel", "vercel", "deploying a frontend to Vercel"},
    {"github", "github", "setting up CI/CD with GitHub Actions"},
    {"slack", "slack", "sending watcher alerts to Slack"},
    {"custom", "custom", "application secrets"},
    {"secrets", "custom", "application secrets"},
};

// List's entry for a version that does not open: INVALID, with the
// reason as its finding.
CredentialSummary UndecryptableSummary(const CredentialRecord& record,
                                       const absl::Status& status,
                                       bool is_default) {
  CredentialSummary s;
  s.provider = record.provider;
  s.profile = record.profile;
  s.version = record.version;
  s.version_count = record.version_count;
  s.readiness = Readiness::kInvalid;
  s.created_at = record.first_created_at;
  s.updated_at = record.created_at;
  s.fingerprint = record.fingerprint;
  s.findings.push_back({"", Severity::kError, "undecryptable",
                        std::string(status.message()),
                        "store the credential again"});
  s.is_default = is_default;
  return s;
}

// The provider each target names (a provider id, or words that contain
// one), with the reason it is needed, each provider once, into `wanted`;
// INVALID_ARGUMENT naming the targets that name none.
absl::Status MatchTargets(
    const ProviderRegistry& registry, const std::vector<std::string>& targets,
    std::vector<std::pair<std::string, std::string>>& wanted) {
  std::vector<FieldViolation> unknown;
  for (size_t i = 0; i < targets.size(); ++i) {
    std::string lower = absl::AsciiStrToLower(targets[i]);
    bool matched = false;
    auto add = [&](const std::string& provider, const std::string& reason) {
      matched = true;
      for (const auto& w : wanted) {
        if (w.first == provider) return;
      }
      wanted.emplace_back(provider, reason);
    };
    if (registry.Find(lower) != nullptr) {
      const TargetWord* tw = nullptr;
      for (const TargetWord& t : kTargetWords) {
        if (lower == t.provider) tw = &t;
      }
      add(lower, tw != nullptr ? tw->reason : lower);
      continue;
    }
    for (absl::string_view word :
         absl::StrSplit(lower, absl::ByAnyChar(" ,;/:"), absl::SkipEmpty())) {
      for (const TargetWord& t : kTargetWords) {
        if (word == t.word) add(t.provider, t.reason);
      }
    }
    if (!matched) {
      unknown.push_back(
          {absl::StrCat("targets[", i, "]"),
           "names no known provider; use a provider id (aws, gcp, azure, "
           "digitalocean, mongodb-atlas, redis-cloud, netlify, auth0, vercel, "
           "github, slack, custom) or words that contain one"});
    }
  }
  if (!unknown.empty()) {
    return InvalidArgumentWithViolations("some targets name no provider",
                                         unknown);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CredentialSummary> CredentialManager::Get(
    absl::string_view provider_id, absl::string_view profile_in,
    int64_t version, AnswerLife* life) {
  CB_ASSIGN_OR_RETURN(const Provider* provider, registry_->Get(provider_id));
  CB_ASSIGN_OR_RETURN(std::string profile,
                      ResolveProfile(provider->spec().id, profile_in));
  return Summarize(*provider, profile, version, life);
}

absl::StatusOr<CredentialSummary> CredentialManager::Summarize(
    const Provider& provider, const std::string& profile, int64_t version,
    AnswerLife* life) {
  // Taken before anything is read: a commit after it changes the mark, so
  // the answer is never older than its mark says.
  const std::optional<Store::ChangeMark> mark = store_->CurrentChangeMark();
  const absl::Time now = clock_();
  CB_ASSIGN_OR_RETURN(
      CredentialRecord record,
      store_->GetCredential(provider.spec().id, profile, version));
  CB_ASSIGN_OR_RETURN(ValueFacts facts, StoredFacts(provider, record));
  absl::Time changes_at;
  CredentialSummary s =
      SummaryOf(provider.spec(), record, facts, now, &changes_at);
  CB_RETURN_IF_ERROR(MarkDefault(s));
  if (life != nullptr) *life = AnswerLife{mark, now, changes_at};
  return s;
}

absl::StatusOr<CredentialManager::StoredValues> CredentialManager::GetValues(
    absl::string_view provider_id, absl::string_view profile_in,
    int64_t version) {
  CB_ASSIGN_OR_RETURN(const Provider* provider, registry_->Get(provider_id));
  CB_ASSIGN_OR_RETURN(std::string profile,
                      ResolveProfile(provider->spec().id, profile_in));
  CB_ASSIGN_OR_RETURN(
      CredentialRecord record,
      store_->GetCredential(provider->spec().id, profile, version));
  StoredValues out;
  out.profile = profile;
  out.version = record.version;
  out.fingerprint = record.fingerprint;
  CB_ASSIGN_OR_RETURN(out.values, Open(record));
  out.readiness =
      SummaryOf(provider->spec(), record, FactsOf(*provider, out.values))
          .readiness;
  return out;
}

absl::StatusOr<ListCredentialsResult> CredentialManager::List(
    absl::string_view provider_id, int page_size,
    absl::string_view page_token) {
  ListCredentialsOptions options;
  if (!provider_id.empty()) {
    CB_ASSIGN_OR_RETURN(const Provider* provider, registry_->Get(provider_id));
    options.provider = provider->spec().id;
  }
  if (page_size < 0) {
    return InvalidArgumentWithViolations(
        "invalid page_size", {{"page_size", "give 0 (default 100) to 1000"}});
  }
  options.limit = page_size == 0 ? 100 : std::min(page_size, 1000);
  if (!page_token.empty()) {
    CB_RETURN_IF_ERROR(DecodePageToken(page_token, options.after_provider,
                                       options.after_profile));
  }
  // One extra row tells whether there is a next page.
  options.limit += 1;
  CB_ASSIGN_OR_RETURN(std::vector<CredentialRecord> records,
                      store_->ListCredentials(options));
  ListCredentialsResult result;
  bool more = records.size() == static_cast<size_t>(options.limit);
  if (more) records.pop_back();
  std::map<std::string, std::string> defaults;  // provider -> default profile
  for (const CredentialRecord& record : records) {
    const Provider* provider = registry_->Find(record.provider);
    if (provider == nullptr) continue;  // A provider this build dropped.
    if (!defaults.count(record.provider)) {
      CB_ASSIGN_OR_RETURN(defaults[record.provider],
                          DefaultProfile(record.provider));
    }
    const bool is_default = defaults[record.provider] == record.profile;
    absl::StatusOr<ValueFacts> facts = StoredFacts(*provider, record);
    if (!facts.ok()) {
      result.credentials.push_back(
          UndecryptableSummary(record, facts.status(), is_default));
      continue;
    }
    result.credentials.push_back(SummaryOf(provider->spec(), record, *facts));
    result.credentials.back().is_default = is_default;
  }
  if (more && !records.empty()) {
    result.next_page_token = EncodePageToken(records.back());
  }
  return result;
}

absl::StatusOr<std::vector<Requirement>> CredentialManager::ResolveRequirements(
    const std::vector<std::string>& targets, absl::string_view profile_in,
    absl::string_view resource) {
  if (!profile_in.empty())
    CB_RETURN_IF_ERROR(CheckProfileName(profile_in).status());
  if (resource.size() > kMaxResourceBytes) {
    return InvalidArgumentWithViolations(
        "resource name too long",
        {{"resource", absl::StrCat("at most ", kMaxResourceBytes, " bytes")}});
  }
  if (targets.empty() || targets.size() > 64) {
    return InvalidArgumentWithViolations(
        "no targets", {{"targets",
                        "name 1 to 64 targets, e.g. \"aws\", "
                        "\"deploy frontend to netlify\""}});
  }
  std::vector<std::pair<std::string, std::string>> wanted;  // provider, reason
  CB_RETURN_IF_ERROR(MatchTargets(*registry_, targets, wanted));
  std::vector<Requirement> out;
  for (const auto& [provider_id, reason] : wanted) {
    const Provider* provider = registry_->Find(provider_id);
    const ProviderSpec& spec = provider->spec();
    CB_ASSIGN_OR_RETURN(ProfileChoice choice,
                        ChooseProfile(spec.id, profile_in, resource));
    Requirement r;
    r.provider = spec.id;
    r.profile = choice.profile;
    r.profile_source = choice.source;
    r.binding_note = choice.note;
    r.reason = reason;
    r.required_permissions = spec.required_permissions;
    absl::StatusOr<CredentialSummary> s = Get(spec.id, choice.profile, 0);
    if (s.ok()) {
      r.configured = true;
      r.readiness = s->readiness;
      r.missing_fields = s->missing_fields;
    } else if (absl::IsNotFound(s.status())) {
      r.configured = false;
      r.readiness = Readiness::kIncomplete;
      r.missing_fields = MissingFields(spec, FieldValues());
    } else {
      return s.status();
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace credbroker
