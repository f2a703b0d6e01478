#include "broker/core/credentials.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "broker/common/errors.h"
#include "broker/common/status_macros.h"
#include "broker/core/record_codec.h"

namespace credbroker {
namespace {

constexpr char kDefaultProfile[] = "default";
constexpr size_t kGeneratedPasswordLength = 32;
// A known expiry closer than this is worth a warning.
constexpr absl::Duration kExpirySoon = absl::Hours(24 * 14);

std::string FormatDay(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d", t, absl::UTCTimeZone());
}

// Whole days from `now` until `t`, rounded down (negative once past).
int64_t DaysUntil(absl::Time now, absl::Time t) {
  absl::Duration rem;
  int64_t days = absl::IDivDuration(t - now, absl::Hours(24), &rem);
  if (rem < absl::ZeroDuration()) --days;
  return days;
}

// The facts cache's key prefix of provider/profile (NUL-separated: no
// profile is a prefix of another's key).
std::string FactsPrefix(absl::string_view provider, absl::string_view profile) {
  return absl::StrCat(provider, absl::string_view("\0", 1), profile,
                      absl::string_view("\0", 1));
}

// Makes room in a full cache (kMaxCachedFacts entries) by dropping an
// eighth of it, the first in the hash map's order: entries in no particular
// order, and a call that fills the cache pays for 512 destructions, not for
// 4,096 as when the whole cache was emptied.
template <typename Cache>
void MakeRoom(Cache& cache, size_t limit) {
  if (cache.size() < limit) return;
  size_t drop = std::max<size_t>(1, limit / 8);
  for (auto it = cache.begin(); drop > 0 && it != cache.end(); --drop) cache.erase(it++);
}

// FactsPrefix(provider, profile) followed by `version`, built at once.
std::string FactsKey(absl::string_view provider, absl::string_view profile,
                     int64_t version) {
  const absl::string_view nul("\0", 1);
  return absl::StrCat(provider, nul, profile, nul, version);
}

// Findings about the credential's own expiry (a field marked `expiry`) at
// `now`. `stored`: about a stored credential (EXPIRED readiness, a warning)
// rather than one being entered (refused, an error).
void CheckExpiryAt(const ProviderSpec& spec, std::optional<absl::Time> expiry,
                   absl::Time now, bool stored, std::vector<Finding>& findings) {
  if (!expiry.has_value()) return;
  std::string field;
  for (const FieldSpec& f : spec.fields) {
    if (f.expiry) field = f.name;
  }
  if (*expiry <= now) {
    // The guide: "For API keys - check they haven't expired"; Azure:
    // "Client secret expired".
    findings.push_back(
        {field, stored ? Severity::kWarning : Severity::kError, "expired",
         absl::StrCat("This ", spec.display_name, " credential expired on ",
                      FormatDay(*expiry), "."),
         absl::StrCat("Create a new one (see the how-to-get steps), store it "
                      "with its new expiry date, then delete the old one in ",
                      spec.display_name, "'s console.")});
  } else if (*expiry - now <= kExpirySoon) {
    findings.push_back(
        {field, Severity::kWarning, "expires_soon",
         absl::StrCat("This ", spec.display_name, " credential expires on ",
                      FormatDay(*expiry), ", in ", DaysUntil(now, *expiry),
                      " days."),
         "Create its replacement now and store it before the old one "
         "expires."});
  }
}

void CheckExpiry(const ProviderSpec& spec, const FieldValues& values,
                 absl::Time now, bool stored, std::vector<Finding>& findings) {
  CheckExpiryAt(spec, ExpiryOf(spec, values), now, stored, findings);
}

std::string RecordName(absl::string_view provider, absl::string_view profile,
                       int64_t version) {
  return absl::StrCat(provider, "/", profile, " version ", version);
}

// Field violations for every error finding, naming the request field.
std::vector<FieldViolation> ViolationsOf(const std::vector<Finding>& findings) {
  std::vector<FieldViolation> out;
  for (const Finding& f : findings) {
    if (f.severity != Severity::kError) continue;
    std::string desc = f.message;
    if (!f.fix.empty()) absl::StrAppend(&desc, " ", f.fix);
    out.push_back(
        {f.field.empty() ? std::string("values") : absl::StrCat("values.", f.field),
         std::move(desc)});
  }
  return out;
}

absl::Status CheckInputBounds(const FieldValues& values,
                              const SecretBytes& file) {
  std::vector<FieldViolation> violations;
  if (values.size() > kMaxFields) {
    violations.push_back({"values", absl::StrCat("at most ", kMaxFields,
                                                 " fields may be given; got ",
                                                 values.size())});
  }
  for (const auto& [name, value] : values) {
    if (name.empty() || name.size() > 64) {
      violations.push_back(
          {"values", "field names must be 1 to 64 characters long"});
    } else if (value.size() > kMaxValueBytes) {
      violations.push_back(
          {absl::StrCat("values.", name),
           absl::StrCat("the value is ", value.size(), " bytes; at most ",
                        kMaxValueBytes, " are accepted")});
    }
  }
  if (file.size() > kMaxFileBytes) {
    violations.push_back({"from_file", absl::StrCat("the file is ", file.size(),
                                                    " bytes; at most ",
                                                    kMaxFileBytes,
                                                    " are accepted")});
  }
  if (violations.empty()) return absl::OkStatus();
  return InvalidArgumentWithViolations("the request is too large", violations);
}

// Empty values count as not given.
void DropEmpty(FieldValues& values) {
  for (auto it = values.begin(); it != values.end();) {
    if (it->second.empty()) {
      it = values.erase(it);
    } else {
      ++it;
    }
  }
}

Readiness ReadinessOf(const std::vector<std::string>& missing,
                      const std::vector<Finding>& findings, bool rotation_due) {
  if (!missing.empty()) return Readiness::kIncomplete;
  bool expired = false;
  for (const Finding& f : findings) {
    if (f.code == "expired") {
      expired = true;
    } else if (f.severity == Severity::kError) {
      return Readiness::kInvalid;
    }
  }
  if (expired) return Readiness::kExpired;
  if (rotation_due) return Readiness::kRotationDue;
  return Readiness::kReady;
}

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
        {{"page_token", "pass the next_page_token of the previous response "
                        "unchanged, or leave it empty for the first page"}});
  }
  std::vector<std::string> parts = absl::StrSplit(raw, '\0');
  if (parts.size() != 2) {
    return InvalidArgumentWithViolations(
        "page_token is not valid",
        {{"page_token", "pass the next_page_token of the previous response "
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

}  // namespace

absl::string_view ReadinessName(Readiness r) {
  switch (r) {
    case Readiness::kReady:
      return "READY";
    case Readiness::kIncomplete:
      return "INCOMPLETE";
    case Readiness::kInvalid:
      return "INVALID";
    case Readiness::kRotationDue:
      return "ROTATION_DUE";
    case Readiness::kExpired:
      return "EXPIRED";
    case Readiness::kVerifyFailed:
      return "VERIFY_FAILED";
  }
  return "UNKNOWN";
}

absl::StatusOr<std::string> CheckProfileName(absl::string_view profile) {
  if (profile.empty()) return std::string(kDefaultProfile);
  bool ok = profile.size() <= 64 && absl::ascii_isalnum(profile[0]);
  for (char c : profile) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' ||
          c == '-' || c == '.')) {
      ok = false;
    }
  }
  if (!ok) {
    return InvalidArgumentWithViolations(
        "invalid profile name",
        {{"profile",
          "a profile name is 1 to 64 characters of lowercase letters, digits, "
          "'_', '-' and '.', starting with a letter or digit (e.g. "
          "\"default\", \"staging\")"}});
  }
  return std::string(profile);
}

std::vector<MaskedField> MaskFields(const ProviderSpec& spec,
                                    const FieldValues& values) {
  std::vector<MaskedField> out;
  std::set<std::string> seen;
  for (const FieldSpec& f : spec.fields) {
    MaskedField m;
    m.name = f.name;
    m.sensitive = f.sensitive;
    auto it = values.find(f.name);
    if (it != values.end() && !it->second.empty()) {
      m.set = true;
      m.display = MaskValue(f, it->second);
    }
    out.push_back(std::move(m));
    seen.insert(f.name);
  }
  // Fields outside the spec ("custom" secrets) are always sensitive.
  for (const auto& [name, value] : values) {
    if (seen.count(name)) continue;
    FieldSpec f;
    f.name = name;
    f.sensitive = true;
    MaskedField m;
    m.name = name;
    m.sensitive = true;
    m.set = !value.empty();
    m.display = m.set ? MaskValue(f, value) : "";
    out.push_back(std::move(m));
  }
  return out;
}

CredentialManager::CredentialManager(Store* store, const Sealer* sealer,
                                     const ProviderRegistry* registry,
                                     Clock clock)
    : store_(store),
      sealer_(sealer),
      registry_(registry),
      clock_(std::move(clock)) {}

absl::StatusOr<FieldValues> CredentialManager::Open(
    const CredentialRecord& record) const {
  CB_ASSIGN_OR_RETURN(
      SecretBytes plaintext,
      sealer_->Open(record.sealed,
                    RecordAssociatedData(record.provider, record.profile,
                                         record.version),
                    RecordName(record.provider, record.profile, record.version)));
  absl::StatusOr<FieldValues> values = DecodeFieldValues(plaintext);
  if (!values.ok()) {
    return absl::DataLossError(absl::StrCat(
        "stored credential ",
        RecordName(record.provider, record.profile, record.version),
        " is damaged: ", values.status().message()));
  }
  return values;
}

CredentialSummary CredentialManager::SummarizeStored(const Provider& provider,
                                                     const CredentialRecord& record,
                                                     const FieldValues& values) {
  auto facts = std::make_shared<const ValueFacts>(FactsOf(provider, values));
  KeepFacts(FactsKey(record.provider, record.profile, record.version),
            DigestOf(record.sealed), facts);
  return SummaryOf(provider.spec(), record, *facts);
}

CredentialManager::ValueFacts CredentialManager::FactsOf(
    const Provider& provider, const FieldValues& values) const {
  const ProviderSpec& spec = provider.spec();
  ValueFacts f;
  f.fields = MaskFields(spec, values);
  f.findings = provider.Validate(values);
  f.missing_fields = MissingFields(spec, values);
  f.expiry = ExpiryOf(spec, values);
  return f;
}

CredentialSummary CredentialManager::SummaryOf(const ProviderSpec& spec,
                                               const CredentialRecord& record,
                                               const ValueFacts& facts) const {
  return SummaryOf(spec, record, facts, clock_(), nullptr);
}

CredentialSummary CredentialManager::SummaryOf(const ProviderSpec& spec,
                                               const CredentialRecord& record,
                                               const ValueFacts& facts,
                                               const absl::Time now,
                                               absl::Time* changes_at) const {
  CredentialSummary s;
  s.provider = record.provider;
  s.profile = record.profile;
  s.version = record.version;
  s.version_count = record.version_count;
  s.fields = facts.fields;
  s.findings = facts.findings;
  s.missing_fields = facts.missing_fields;
  s.created_at = record.first_created_at == absl::Time() ? record.created_at
                                                         : record.first_created_at;
  s.updated_at = record.created_at;
  absl::Duration period = record.rotation_period > absl::ZeroDuration()
                              ? record.rotation_period
                              : spec.rotation_period;
  s.rotation_due_at = record.created_at + period;
  s.days_until_rotation = DaysUntil(now, s.rotation_due_at);
  if (facts.expiry.has_value()) s.expires_at = *facts.expiry;
  CheckExpiryAt(spec, facts.expiry, now, /*stored=*/true, s.findings);
  s.readiness = ReadinessOf(s.missing_fields, s.findings, now >= s.rotation_due_at);
  s.fingerprint = record.fingerprint;
  if (changes_at != nullptr) {
    absl::Time next = absl::InfiniteFuture();
    auto consider = [&](absl::Time t) {
      if (t > now && t < next) next = t;
    };
    // DaysUntil(now, t) is k while t - now >= k days: it changes at the
    // first instant after t - k days (absl::Time's resolution is a quarter
    // of a nanosecond).
    auto day_step = [&](absl::Time t) {
      consider(t - DaysUntil(now, t) * absl::Hours(24) + absl::Nanoseconds(1) / 4);
    };
    day_step(s.rotation_due_at);
    consider(s.rotation_due_at);             // the readiness: rotation due
    if (facts.expiry.has_value()) {
      day_step(*facts.expiry);               // "expires ... in N days"
      consider(*facts.expiry);               // expired
      consider(*facts.expiry - kExpirySoon);  // expires soon
    }
    *changes_at = next;
  }
  return s;
}

absl::StatusOr<std::shared_ptr<const CredentialManager::ValueFacts>>
CredentialManager::StoredFacts(const Provider& provider,
                               const CredentialRecord& record) {
  std::string key = FactsKey(record.provider, record.profile, record.version);
  const Digest sealed = DigestOf(record.sealed);
  {
    absl::MutexLock lock(&facts_mu_);
    auto it = facts_.find(key);
    if (it != facts_.end() && it->second.sealed == sealed) {
      return it->second.facts;
    }
  }
  facts_opened_.fetch_add(1, std::memory_order_relaxed);
  CB_ASSIGN_OR_RETURN(FieldValues values, Open(record));
  auto facts = std::make_shared<const ValueFacts>(FactsOf(provider, values));
  KeepFacts(std::move(key), sealed, facts);
  return facts;
}

CredentialManager::CacheStats CredentialManager::GetCacheStats() {
  CacheStats stats;
  stats.facts_opened = facts_opened_.load(std::memory_order_relaxed);
  absl::MutexLock lock(&facts_mu_);
  stats.facts_kept = static_cast<int64_t>(facts_.size());
  return stats;
}

void CredentialManager::KeepFacts(std::string key, const Digest& sealed,
                                  std::shared_ptr<const ValueFacts> facts) {
  absl::MutexLock lock(&facts_mu_);
  MakeRoom(facts_, kMaxKeptFacts);
  facts_.insert_or_assign(std::move(key), CachedFacts{sealed, std::move(facts)});
}

absl::StatusOr<CredentialManager::StoredRead> CredentialManager::ReadStored(
    const Provider& provider, absl::string_view profile, int64_t version) {
  const std::string& id = provider.spec().id;
  // Taken before the read: a commit after it changes the mark, so an entry
  // is never newer than its mark says.
  const std::optional<Store::ChangeMark> mark = store_->CurrentChangeMark();
  const std::string key = FactsKey(id, profile, version);
  if (mark.has_value()) {
    absl::MutexLock lock(&facts_mu_);
    auto it = reads_.find(key);
    if (it != reads_.end() && it->second.mark == *mark) return it->second.read;
  }
  CB_ASSIGN_OR_RETURN(CredentialRecord record, store_->GetCredential(id, profile, version));
  StoredRead read;
  read.record = std::make_shared<const CredentialRecord>(std::move(record));
  CB_ASSIGN_OR_RETURN(read.facts, StoredFacts(provider, *read.record));
  if (mark.has_value()) {
    absl::MutexLock lock(&facts_mu_);
    MakeRoom(reads_, kMaxCachedFacts);
    reads_[key] = CachedRead{*mark, read};
  }
  return read;
}

absl::Status CredentialManager::MarkDefault(CredentialSummary& s) {
  CB_ASSIGN_OR_RETURN(std::string def, DefaultProfile(s.provider));
  s.is_default = s.profile == def;
  return absl::OkStatus();
}

absl::StatusOr<PutCredentialResult> CredentialManager::Put(
    PutCredentialInput input) {
  CB_ASSIGN_OR_RETURN(const Provider* provider, registry_->Get(input.provider));
  CB_ASSIGN_OR_RETURN(std::string profile,
                      ResolveProfile(provider->spec().id, input.profile));
  CB_RETURN_IF_ERROR(CheckInputBounds(input.values, input.file_contents));
  if (input.rotation_period != absl::ZeroDuration() &&
      (input.rotation_period < absl::Hours(24) ||
       input.rotation_period > absl::Hours(24 * 3650))) {
    return InvalidArgumentWithViolations(
        "invalid rotation period",
        {{"rotation_period", "give a period between 1 day and 10 years, or "
                             "leave it unset for the provider's default"}});
  }
  const ProviderSpec& spec = provider->spec();
  DropEmpty(input.values);

  absl::Duration rotation_period = input.rotation_period;
  if (input.keep_existing) {
    absl::StatusOr<CredentialRecord> current =
        store_->GetCredential(spec.id, profile, 0);
    if (current.ok()) {
      CB_ASSIGN_OR_RETURN(FieldValues stored, Open(*current));
      for (auto& [name, value] : stored) {
        const FieldSpec* f = spec.FindField(name);
        // Derived fields are derived again from what is now given.
        if (f != nullptr && f->derived) continue;
        input.values.emplace(name, std::move(value));
      }
      if (rotation_period == absl::ZeroDuration()) {
        rotation_period = current->rotation_period;
      }
    } else if (!absl::IsNotFound(current.status())) {
      return current.status();
    }
  }

  PutCredentialResult result;
  std::vector<FieldViolation> gen_violations;
  for (const std::string& name : input.generate) {
    const FieldSpec* f = spec.FindField(name);
    if (f == nullptr || !f->generatable) {
      gen_violations.push_back(
          {absl::StrCat("generate.", name),
           absl::StrCat("the broker can generate only fields marked "
                        "generatable in ",
                        spec.display_name, "'s form")});
      continue;
    }
    input.values[name] = GeneratePassword(kGeneratedPasswordLength);
    result.generated.push_back(name);
  }
  if (!gen_violations.empty()) {
    return InvalidArgumentWithViolations("cannot generate these fields",
                                         gen_violations);
  }

  CB_ASSIGN_OR_RETURN(NormalizeResult normalized,
                      provider->Normalize(std::move(input.values),
                                          input.file_contents.Reveal()));
  std::vector<Finding> findings = provider->Validate(normalized.values);
  std::vector<Finding> all = normalized.findings;
  all.insert(all.end(), findings.begin(), findings.end());
  CheckExpiry(spec, normalized.values, clock_(), /*stored=*/false, all);
  if (HasErrors(all)) {
    return InvalidArgumentWithViolations(
        absl::StrCat(spec.display_name,
                     " credential was not stored: fix the fields below"),
        ViolationsOf(all));
  }

  const FieldValues& values = normalized.values;
  SecretBytes plaintext = EncodeFieldValues(values);
  std::string fingerprint = sealer_->Fingerprint(plaintext);
  CB_ASSIGN_OR_RETURN(
      CredentialRecord record,
      store_->PutCredential(
          spec.id, profile, rotation_period,
          [&](int64_t version)
              -> absl::StatusOr<std::pair<std::string, std::string>> {
            return std::make_pair(
                sealer_->Seal(plaintext,
                              RecordAssociatedData(spec.id, profile, version)),
                fingerprint);
          },
          input.audit_of, input.audit_hash));
  if (record.version_count == 0) record.version_count = record.version;
  result.credential = SummarizeStored(*provider, record, values);
  CB_RETURN_IF_ERROR(MarkDefault(result.credential));
  for (Finding& f : all) {
    if (f.severity != Severity::kError) result.findings.push_back(std::move(f));
  }
  return result;
}

absl::StatusOr<CredentialSummary> CredentialManager::Get(
    absl::string_view provider_id, absl::string_view profile_in,
    int64_t version) {
  CB_ASSIGN_OR_RETURN(std::shared_ptr<const CredentialSummary> s,
                      GetShared(provider_id, profile_in, version));
  return *s;
}

absl::StatusOr<std::shared_ptr<const CredentialSummary>>
CredentialManager::GetShared(absl::string_view provider_id,
                             absl::string_view profile_in, int64_t version) {
  CB_ASSIGN_OR_RETURN(const Provider* provider, registry_->Get(provider_id));
  CB_ASSIGN_OR_RETURN(std::string profile,
                      ResolveProfile(provider->spec().id, profile_in));
  return SharedSummary(*provider, profile, version);
}

absl::StatusOr<std::shared_ptr<const void>> CredentialManager::GetRenderedAs(
    absl::string_view provider_id, absl::string_view profile_in, int64_t version,
    const Renderer<CredentialSummary>& renderer) {
  CB_ASSIGN_OR_RETURN(const Provider* provider, registry_->Get(provider_id));
  CB_ASSIGN_OR_RETURN(std::string profile,
                      ResolveProfile(provider->spec().id, profile_in));
  std::shared_ptr<const void> rendered;
  CB_RETURN_IF_ERROR(
      SharedSummary(*provider, profile, version, &renderer, &rendered).status());
  return rendered;
}

absl::StatusOr<std::shared_ptr<const CredentialSummary>>
CredentialManager::SharedSummary(const Provider& provider, const std::string& profile,
                                 int64_t version,
                                 const Renderer<CredentialSummary>* renderer,
                                 std::shared_ptr<const void>* rendered) {
  // Taken before anything is read, as in ReadStored.
  const std::optional<Store::ChangeMark> mark = store_->CurrentChangeMark();
  const absl::Time now = clock_();
  const std::string key = FactsKey(provider.spec().id, profile, version);
  std::shared_ptr<const CredentialSummary> kept;
  if (mark.has_value()) {
    absl::MutexLock lock(&facts_mu_);
    auto it = summaries_.find(key);
    if (it != summaries_.end() && it->second.mark == *mark &&
        it->second.built_at <= now && now < it->second.changes_at) {
      const Rendering& r = it->second.rendering;
      if (renderer == nullptr) return it->second.summary;
      if (r.Is(*renderer->type)) {
        *rendered = r.value;
        return it->second.summary;
      }
      kept = it->second.summary;
    }
  }
  if (kept != nullptr) {
    // Kept, but not yet rendered so: rendered now, outside the lock, and
    // kept with it unless it was replaced meanwhile.
    *rendered = renderer->render(*kept);
    absl::MutexLock lock(&facts_mu_);
    auto it = summaries_.find(key);
    if (it != summaries_.end() && it->second.summary == kept) {
      it->second.rendering = Rendering{renderer->type, *rendered};
    }
    return kept;
  }
  CB_ASSIGN_OR_RETURN(StoredRead read, ReadStored(provider, profile, version));
  CachedSummary entry;
  CredentialSummary s = SummaryOf(provider.spec(), *read.record, *read.facts,
                                  now, &entry.changes_at);
  CB_RETURN_IF_ERROR(MarkDefault(s));
  entry.built_at = now;
  entry.summary = std::make_shared<const CredentialSummary>(std::move(s));
  if (renderer != nullptr) {
    *rendered = renderer->render(*entry.summary);
    entry.rendering = Rendering{renderer->type, *rendered};
  }
  if (mark.has_value()) {
    entry.mark = *mark;
    absl::MutexLock lock(&facts_mu_);
    MakeRoom(summaries_, kMaxCachedFacts);
    summaries_[key] = entry;
  }
  return entry.summary;
}

absl::StatusOr<CredentialManager::StoredValues> CredentialManager::GetValues(
    absl::string_view provider_id, absl::string_view profile_in,
    int64_t version) {
  CB_ASSIGN_OR_RETURN(const Provider* provider, registry_->Get(provider_id));
  CB_ASSIGN_OR_RETURN(std::string profile,
                      ResolveProfile(provider->spec().id, profile_in));
  CB_ASSIGN_OR_RETURN(StoredRead read, ReadStored(*provider, profile, version));
  StoredValues out;
  out.profile = profile;
  out.version = read.record->version;
  out.fingerprint = read.record->fingerprint;
  CB_ASSIGN_OR_RETURN(out.values, Open(*read.record));
  out.readiness = SummaryOf(provider->spec(), *read.record, *read.facts).readiness;
  return out;
}

absl::StatusOr<ListCredentialsResult> CredentialManager::List(
    absl::string_view provider_id, int page_size, absl::string_view page_token) {
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
    absl::StatusOr<std::shared_ptr<const ValueFacts>> facts =
        StoredFacts(*provider, record);
    if (!facts.ok()) {
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
                            std::string(facts.status().message()),
                            "store the credential again"});
      s.is_default = is_default;
      result.credentials.push_back(std::move(s));
      continue;
    }
    result.credentials.push_back(SummaryOf(provider->spec(), record, **facts));
    result.credentials.back().is_default = is_default;
  }
  if (more && !records.empty()) {
    result.next_page_token = EncodePageToken(records.back());
  }
  return result;
}

absl::StatusOr<int64_t> CredentialManager::Delete(absl::string_view provider_id,
                                                  absl::string_view profile_in) {
  CB_ASSIGN_OR_RETURN(const Provider* provider, registry_->Get(provider_id));
  CB_ASSIGN_OR_RETURN(std::string profile,
                      ResolveProfile(provider->spec().id, profile_in));
  absl::StatusOr<int64_t> deleted =
      store_->DeleteCredential(provider->spec().id, profile);
  const std::string prefix = FactsPrefix(provider->spec().id, profile);
  absl::MutexLock lock(&facts_mu_);
  // Hash maps of at most kMaxCachedFacts entries each: a whole pass.
  auto drop = [&prefix](auto& cache) {
    absl::erase_if(cache, [&prefix](const auto& entry) {
      return absl::StartsWith(entry.first, prefix);
    });
  };
  drop(facts_);
  drop(reads_);
  drop(summaries_);
  drop(validations_);
  return deleted;
}

absl::StatusOr<ValidateResult> CredentialManager::Validate(
    absl::string_view provider_id, absl::string_view profile_in,
    FieldValues values, const SecretBytes& file_contents) {
  CB_ASSIGN_OR_RETURN(const Provider* provider, registry_->Get(provider_id));
  CB_ASSIGN_OR_RETURN(std::string profile,
                      ResolveProfile(provider->spec().id, profile_in));
  CB_RETURN_IF_ERROR(CheckInputBounds(values, file_contents));
  const ProviderSpec& spec = provider->spec();
  DropEmpty(values);
  if (values.empty() && file_contents.empty()) {
    CB_ASSIGN_OR_RETURN(StoredValidation stored, SharedValidation(*provider, profile));
    return *stored.result;
  }
  ValidateResult result;
  result.profile = profile;
  result.required_permissions = spec.required_permissions;
  result.manual_checks = spec.troubleshooting;
  absl::StatusOr<NormalizeResult> normalized =
      provider->Normalize(std::move(values), file_contents.Reveal());
  if (!normalized.ok()) {
    // A file that cannot be read at all is a finding, not a failed call.
    if (!absl::IsInvalidArgument(normalized.status())) return normalized.status();
    for (const FieldViolation& v : GetFieldViolations(normalized.status())) {
      std::string field = v.field;
      if (absl::StartsWith(field, "values.")) field = field.substr(7);
      result.findings.push_back(
          {field, Severity::kError, "unreadable", v.description, ""});
    }
    if (result.findings.empty()) {
      result.findings.push_back({"", Severity::kError, "unreadable",
                                 std::string(normalized.status().message()), ""});
    }
    result.readiness = Readiness::kInvalid;
    return result;
  }
  result.findings = normalized->findings;
  std::vector<Finding> checks = provider->Validate(normalized->values);
  result.findings.insert(result.findings.end(), checks.begin(), checks.end());
  CheckExpiry(spec, normalized->values, clock_(), /*stored=*/false,
              result.findings);
  result.missing_fields = MissingFields(spec, normalized->values);
  result.fields = MaskFields(spec, normalized->values);
  result.readiness = ReadinessOf(result.missing_fields, result.findings, false);
  result.valid = !HasErrors(result.findings) && result.missing_fields.empty();
  return result;
}

absl::StatusOr<CredentialManager::StoredValidation>
CredentialManager::ValidateStored(absl::string_view provider_id,
                                  absl::string_view profile_in) {
  CB_ASSIGN_OR_RETURN(const Provider* provider, registry_->Get(provider_id));
  CB_ASSIGN_OR_RETURN(std::string profile,
                      ResolveProfile(provider->spec().id, profile_in));
  return SharedValidation(*provider, profile);
}

absl::StatusOr<std::shared_ptr<const void>> CredentialManager::ValidateStoredRenderedAs(
    absl::string_view provider_id, absl::string_view profile_in,
    const Renderer<ValidateResult>& renderer) {
  CB_ASSIGN_OR_RETURN(const Provider* provider, registry_->Get(provider_id));
  CB_ASSIGN_OR_RETURN(std::string profile,
                      ResolveProfile(provider->spec().id, profile_in));
  std::shared_ptr<const void> rendered;
  CB_RETURN_IF_ERROR(SharedValidation(*provider, profile, &renderer, &rendered).status());
  return rendered;
}

absl::StatusOr<CredentialManager::StoredValidation>
CredentialManager::SharedValidation(const Provider& provider,
                                    const std::string& profile,
                                    const Renderer<ValidateResult>* renderer,
                                    std::shared_ptr<const void>* rendered) {
  const ProviderSpec& spec = provider.spec();
  StoredValidation out;
  CB_ASSIGN_OR_RETURN(out.summary, SharedSummary(provider, profile, 0));
  const std::string key = FactsPrefix(spec.id, profile);
  {
    absl::MutexLock lock(&facts_mu_);
    auto it = validations_.find(key);
    if (it != validations_.end() && it->second.validation.summary == out.summary) {
      const Rendering& r = it->second.rendering;
      if (renderer == nullptr) return it->second.validation;
      if (r.Is(*renderer->type)) {
        *rendered = r.value;
        return it->second.validation;
      }
      out = it->second.validation;
    }
  }
  if (out.result != nullptr) {
    // Kept, but not yet rendered so: as in SharedSummary.
    *rendered = renderer->render(*out.result);
    absl::MutexLock lock(&facts_mu_);
    auto it = validations_.find(key);
    if (it != validations_.end() && it->second.validation.summary == out.summary) {
      it->second.rendering = Rendering{renderer->type, *rendered};
    }
    return out;
  }
  const CredentialSummary& s = *out.summary;
  auto result = std::make_shared<ValidateResult>();
  result->profile = profile;
  result->required_permissions = spec.required_permissions;
  result->manual_checks = spec.troubleshooting;
  result->readiness = s.readiness;
  result->findings = s.findings;
  result->missing_fields = s.missing_fields;
  result->fields = s.fields;
  // Reported even when another state (EXPIRED) takes precedence. Whether
  // the due time has passed is the same for every moment the summary holds
  // for (its span ends at the due time).
  if (clock_() >= s.rotation_due_at) {
    result->findings.push_back(
        {"", Severity::kWarning, "rotation_due",
         absl::StrCat("this credential is older than its rotation period (",
                      absl::FormatDuration(s.rotation_due_at - s.updated_at), ")"),
         absl::StrCat("create a new key in the provider's console, store it "
                      "with `credctl set ",
                      spec.id, "`, then disable the old key")});
  }
  result->valid = !HasErrors(result->findings) && result->missing_fields.empty();
  out.result = std::move(result);
  CachedValidation entry{out, {}};
  if (renderer != nullptr) {
    *rendered = renderer->render(*out.result);
    entry.rendering = Rendering{renderer->type, *rendered};
  }
  absl::MutexLock lock(&facts_mu_);
  MakeRoom(validations_, kMaxCachedFacts);
  validations_[key] = std::move(entry);
  return out;
}

absl::StatusOr<std::vector<Requirement>> CredentialManager::ResolveRequirements(
    const std::vector<std::string>& targets, absl::string_view profile_in,
    absl::string_view resource) {
  if (!profile_in.empty()) CB_RETURN_IF_ERROR(CheckProfileName(profile_in).status());
  if (resource.size() > kMaxResourceBytes) {
    return InvalidArgumentWithViolations(
        "resource name too long",
        {{"resource", absl::StrCat("at most ", kMaxResourceBytes, " bytes")}});
  }
  if (targets.empty() || targets.size() > 64) {
    return InvalidArgumentWithViolations(
        "no targets", {{"targets", "name 1 to 64 targets, e.g. \"aws\", "
                                   "\"deploy frontend to netlify\""}});
  }
  std::vector<std::pair<std::string, std::string>> wanted;  // provider, reason
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
    if (registry_->Find(lower) != nullptr) {
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

std::string DefaultProfileKey(absl::string_view provider) {
  return absl::StrCat("default_profile/", provider);
}

absl::StatusOr<std::string> CredentialManager::DefaultProfile(
    absl::string_view provider) {
  uint64_t generation;
  {
    absl::MutexLock lock(&defaults_mu_);
    auto it = defaults_.find(provider);
    if (it != defaults_.end()) return it->second;
    generation = defaults_generation_;
  }
  absl::StatusOr<std::string> stored = store_->GetMeta(DefaultProfileKey(provider));
  if (absl::IsNotFound(stored.status())) {
    stored = std::string(kDefaultProfile);
  } else if (!stored.ok()) {
    return stored.status();
  } else if (!CheckProfileName(*stored).ok() || stored->empty()) {
    // Written only by SetDefaultProfile; anything else is damage.
    return absl::DataLossError(absl::StrCat(
        "the stored default profile of ", provider,
        " is not a valid profile name; set it again with SetDefaultProfile"));
  }
  absl::MutexLock lock(&defaults_mu_);
  if (defaults_generation_ == generation) defaults_[std::string(provider)] = *stored;
  return stored;
}

absl::StatusOr<std::string> CredentialManager::ResolveProfile(
    absl::string_view provider, absl::string_view profile) {
  if (!profile.empty()) return CheckProfileName(profile);
  return DefaultProfile(provider);
}

absl::StatusOr<DefaultProfileChange> CredentialManager::SetDefaultProfile(
    absl::string_view provider_id, absl::string_view profile_in) {
  CB_ASSIGN_OR_RETURN(const Provider* provider, registry_->Get(provider_id));
  CB_ASSIGN_OR_RETURN(std::string profile, CheckProfileName(profile_in));
  const std::string& id = provider->spec().id;
  DefaultProfileChange change;
  change.provider = id;
  change.profile = profile;
  CB_ASSIGN_OR_RETURN(change.previous_profile, DefaultProfile(id));
  {
    // Under the lock, so that no read of the old value is cached after it.
    absl::MutexLock lock(&defaults_mu_);
    ++defaults_generation_;
    defaults_.erase(id);
    CB_RETURN_IF_ERROR(store_->PutMeta(DefaultProfileKey(id), profile));
    defaults_[id] = profile;
  }
  absl::StatusOr<CredentialRecord> stored = store_->GetCredential(id, profile, 0);
  if (!stored.ok() && !absl::IsNotFound(stored.status())) return stored.status();
  change.configured = stored.ok();
  return change;
}

absl::StatusOr<CredentialHistory> CredentialManager::ListVersions(
    absl::string_view provider_id, absl::string_view profile_in) {
  CB_ASSIGN_OR_RETURN(const Provider* provider, registry_->Get(provider_id));
  CredentialHistory history;
  history.provider = provider->spec().id;
  CB_ASSIGN_OR_RETURN(history.profile,
                      ResolveProfile(history.provider, profile_in));
  CB_ASSIGN_OR_RETURN(std::vector<CredentialRecord> records,
                      store_->ListVersions(history.provider, history.profile));
  if (records.empty()) {
    return absl::NotFoundError(absl::StrCat("no credential stored for ",
                                            history.provider, "/",
                                            history.profile));
  }
  const int64_t latest = records.back().version;
  for (const CredentialRecord& r : records) {
    CredentialVersionInfo v;
    v.version = r.version;
    v.created_at = r.created_at;
    v.fingerprint = r.fingerprint;
    v.current = r.version == latest;
    v.rotation_period = r.rotation_period;
    history.versions.push_back(std::move(v));
  }
  return history;
}

absl::StatusOr<RollbackResult> CredentialManager::Rollback(
    absl::string_view provider_id, absl::string_view profile_in,
    int64_t version) {
  CB_ASSIGN_OR_RETURN(const Provider* provider, registry_->Get(provider_id));
  const ProviderSpec& spec = provider->spec();
  CB_ASSIGN_OR_RETURN(std::string profile, ResolveProfile(spec.id, profile_in));
  if (version <= 0) {
    return InvalidArgumentWithViolations(
        "invalid version",
        {{"version", "give the number of an earlier version (1, 2, ...), as "
                     "ListCredentialVersions shows it"}});
  }
  CB_ASSIGN_OR_RETURN(CredentialRecord current,
                      store_->GetCredential(spec.id, profile, 0));
  if (current.version == version) {
    return absl::FailedPreconditionError(
        absl::StrCat("version ", version, " of ", spec.id, "/", profile,
                     " is already the current version; nothing to roll back"));
  }
  CB_ASSIGN_OR_RETURN(CredentialRecord old,
                      store_->GetCredential(spec.id, profile, version));
  CB_ASSIGN_OR_RETURN(FieldValues values, Open(old));
  RollbackResult result;
  result.restored_version = version;
  // The old values are restored as they were; today's rules are reported,
  // not enforced, so that a rollback always brings back what worked.
  result.findings = provider->Validate(values);
  SecretBytes plaintext = EncodeFieldValues(values);
  std::string fingerprint = sealer_->Fingerprint(plaintext);
  CB_ASSIGN_OR_RETURN(
      CredentialRecord record,
      store_->PutCredential(
          spec.id, profile, current.rotation_period,
          [&](int64_t v) -> absl::StatusOr<std::pair<std::string, std::string>> {
            return std::make_pair(
                sealer_->Seal(plaintext, RecordAssociatedData(spec.id, profile, v)),
                fingerprint);
          }));
  result.credential = SummarizeStored(*provider, record, values);
  CB_RETURN_IF_ERROR(MarkDefault(result.credential));
  return result;
}

absl::StatusOr<BindingView> CredentialManager::ViewBinding(BindingRecord binding) {
  BindingView view;
  absl::StatusOr<CredentialRecord> current =
      store_->GetCredential(binding.provider, binding.profile, 0);
  if (absl::IsNotFound(current.status())) {
    view.state = BindingState::kProfileDeleted;
    view.note = absl::StrCat(
        "\"", binding.resource, "\" was created with ", binding.provider, "/",
        binding.profile, " (credential fingerprint ", binding.fingerprint,
        "), which has since been deleted: enter the credential of the same ",
        "account again, or the resource cannot be managed.");
  } else if (!current.ok()) {
    return current.status();
  } else if (current->fingerprint != binding.fingerprint) {
    view.state = BindingState::kRotated;
    view.note = absl::StrCat(
        "\"", binding.resource, "\" was created with ", binding.provider, "/",
        binding.profile, " version ", binding.credential_version,
        " (fingerprint ", binding.fingerprint,
        "); that profile now holds a different credential (version ",
        current->version, ", fingerprint ", current->fingerprint,
        "): check that it belongs to the same account before approving.");
  }
  view.record = std::move(binding);
  return view;
}

absl::StatusOr<std::vector<BindingView>> CredentialManager::ListBindings(
    absl::string_view provider_id) {
  std::string provider;
  if (!provider_id.empty()) {
    CB_ASSIGN_OR_RETURN(const Provider* p, registry_->Get(provider_id));
    provider = p->spec().id;
  }
  CB_ASSIGN_OR_RETURN(std::vector<BindingRecord> records,
                      store_->ListBindings(provider));
  std::vector<BindingView> out;
  for (BindingRecord& r : records) {
    CB_ASSIGN_OR_RETURN(BindingView v, ViewBinding(std::move(r)));
    out.push_back(std::move(v));
  }
  return out;
}

absl::StatusOr<ProfileChoice> CredentialManager::ChooseProfile(
    absl::string_view provider, absl::string_view profile,
    absl::string_view resource, const BindingLookup& binding_of) {
  ProfileChoice choice;
  if (!resource.empty()) {
    absl::StatusOr<BindingRecord> bound = binding_of ? binding_of(provider, resource)
                                                     : store_->GetBinding(provider, resource);
    if (bound.ok()) {
      CB_ASSIGN_OR_RETURN(BindingView view, ViewBinding(*std::move(bound)));
      choice.binding = std::move(view);
    } else if (!absl::IsNotFound(bound.status())) {
      return bound.status();
    }
  }
  if (!profile.empty()) {
    CB_ASSIGN_OR_RETURN(choice.profile, CheckProfileName(profile));
    choice.source = "requested";
    if (choice.binding.has_value() &&
        choice.binding->record.profile != choice.profile) {
      choice.note = absl::StrCat(
          "\"", resource, "\" was created with ", provider, "/",
          choice.binding->record.profile, ", but this need asks for ",
          provider, "/", choice.profile,
          ": make sure that account can manage it.");
    } else if (choice.binding.has_value()) {
      choice.note = choice.binding->note;
    }
    return choice;
  }
  if (choice.binding.has_value()) {
    choice.profile = choice.binding->record.profile;
    choice.source = "binding";
    choice.note = choice.binding->note;
    return choice;
  }
  CB_ASSIGN_OR_RETURN(choice.profile, DefaultProfile(provider));
  choice.source = "default";
  return choice;
}

}  // namespace credbroker
