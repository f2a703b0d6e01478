// CredentialService on the real credbrokerd through the C++ client library:
// set, list, show, delete and validate for several providers, updates,
// profiles, refused input, paging and a restart.
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/internal/convert.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"

namespace credbroker {
namespace testing {
namespace {

using CredentialServiceTest = BrokerTest;

// No response to an approver may carry a secret value: not in the answer's
// message (the plain type converted back, field for field).
template <typename Message, typename T>
bool Contains(const T& answer, const std::string& secret) {
  return absl::StrContains(
      client::internal::AsProto<Message>(answer).SerializeAsString(), secret);
}
bool Contains(const client::CredentialSummary& c, const std::string& secret) {
  return absl::StrContains(
      client::internal::AsProto<v1::CredentialSummary>(c).SerializeAsString(),
      secret);
}

// For failure messages: names only, never values.
std::string FindingFields(const std::vector<client::Finding>& findings) {
  std::string out;
  for (const auto& f : findings) {
    absl::StrAppend(&out, f.field, ":", client::SeverityName(f.severity), ":",
                    f.code, " ");
  }
  return out;
}
std::string FieldNames(const client::CredentialSummary& c) {
  std::string out;
  for (const auto& f : c.fields)
    absl::StrAppend(&out, f.name, f.set ? "(set) " : " ");
  return out;
}

TEST_F(CredentialServiceTest, ListProvidersHasTheWholeCatalog) {
  absl::StatusOr<std::vector<client::ProviderInfo>> r =
      client_->ListProviders();
  ASSERT_TRUE(r.ok()) << r.status();
  std::set<std::string> ids;
  for (const auto& p : *r) {
    ids.insert(p.id);
    EXPECT_FALSE(p.display_name.empty()) << p.id;
    if (p.id != "custom") {
      EXPECT_FALSE(p.fields.empty()) << p.id;
      EXPECT_FALSE(p.how_to_get.empty()) << p.id;
    }
  }
  for (const char* id :
       {"aws", "gcp", "azure", "digitalocean", "mongodb-atlas", "redis-cloud",
        "netlify", "auth0", "vercel", "github", "slack", "custom"}) {
    EXPECT_TRUE(ids.count(id)) << id;
  }
  client::ProviderInfo aws = ProviderInfo("aws");
  bool key_id = false, secret = false;
  for (const auto& f : aws.fields) {
    if (f.name == "access_key_id") key_id = !f.sensitive;
    if (f.name == "secret_access_key") secret = f.sensitive;
  }
  EXPECT_TRUE(key_id);
  EXPECT_TRUE(secret);
  EXPECT_TRUE(ProviderInfo("custom").arbitrary_fields);
}

TEST_F(CredentialServiceTest, AwsSetShowListValidateDelete) {
  absl::StatusOr<client::StoredCredential> put =
      Put("aws", "",
          {{"access_key_id", kAwsExampleKeyId},
           {"secret_access_key", kAwsExampleSecret}});
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_FALSE(Contains<v1::PutCredentialResponse>(*put, kAwsExampleSecret));
  const client::CredentialSummary& c = put->credential;
  EXPECT_EQ(c.provider, "aws");
  EXPECT_EQ(c.profile, "default");
  EXPECT_EQ(c.version, 1);
  EXPECT_EQ(c.readiness, client::Readiness::kReady);
  EXPECT_FALSE(c.fingerprint.empty());
  const client::MaskedField* id = FindField(c, "access_key_id");
  ASSERT_NE(id, nullptr);
  EXPECT_TRUE(id->set);
  EXPECT_EQ(id->display, "AKIA…MPLE");
  const client::MaskedField* secret = FindField(c, "secret_access_key");
  ASSERT_NE(secret, nullptr);
  EXPECT_TRUE(secret->set);
  EXPECT_TRUE(secret->sensitive);

  absl::StatusOr<client::CredentialSummary> got = Get("aws", "default");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(Contains(*got, kAwsExampleSecret));
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->version_count, 1);
  EXPECT_EQ(got->fingerprint, c.fingerprint);
  EXPECT_EQ(got->readiness, client::Readiness::kReady);
  EXPECT_GT(got->created_at, absl::UnixEpoch());
  EXPECT_GT(got->rotation_due_at, got->updated_at);

  absl::StatusOr<client::CredentialPage> list = client_->ListCredentials();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->credentials.size(), 1u);
  EXPECT_EQ(list->credentials[0].provider, "aws");
  EXPECT_EQ(list->credentials[0].readiness, client::Readiness::kReady);
  EXPECT_FALSE(Contains<v1::ListCredentialsResponse>(*list, kAwsExampleSecret));

  client::CredentialCandidate stored;
  stored.provider = "aws";
  absl::StatusOr<client::Diagnosis> v = client_->ValidateCredential(stored);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->valid);
  EXPECT_EQ(v->readiness, client::Readiness::kReady);
  EXPECT_FALSE(v->required_permissions.empty());
  EXPECT_FALSE(Contains<v1::ValidateCredentialResponse>(*v, kAwsExampleSecret));

  absl::StatusOr<int64_t> d = client_->DeleteCredential("aws", "");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, 1);
  EXPECT_EQ(Get("aws", "default").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->DeleteCredential("aws", "").status().code(),
            absl::StatusCode::kNotFound);
  list = client_->ListCredentials();
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->credentials.size(), 0u);
}

TEST_F(CredentialServiceTest, AwsStraySpacesAreTrimmedAndReported) {
  absl::StatusOr<client::StoredCredential> put =
      Put("aws", "",
          {{"access_key_id", absl::StrCat("  ", kAwsExampleKeyId, " ")},
           {"secret_access_key", absl::StrCat(kAwsExampleSecret, "\n")}});
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->credential.readiness, client::Readiness::kReady);
  bool reported = false;
  for (const auto& f : put->findings) {
    if (f.field == "access_key_id" && f.severity == client::Severity::kInfo)
      reported = true;
  }
  EXPECT_TRUE(reported) << FindingFields(put->findings);
  const client::MaskedField* id = FindField(put->credential, "access_key_id");
  ASSERT_NE(id, nullptr);
  EXPECT_EQ(id->display, "AKIA…MPLE");
  // Same values as without the spaces: same fingerprint.
  absl::StatusOr<client::StoredCredential> clean =
      Put("aws", "clean",
          {{"access_key_id", kAwsExampleKeyId},
           {"secret_access_key", kAwsExampleSecret}});
  ASSERT_TRUE(clean.ok()) << clean.status();
}

TEST_F(CredentialServiceTest, Auth0DomainIsNormalized) {
  std::string domain_field;
  std::map<std::string, std::string> values =
      Auth0Values("https://tenant.auth0.com/", &domain_field);
  ASSERT_FALSE(domain_field.empty()) << "auth0 has no domain field";
  absl::StatusOr<client::StoredCredential> put = Put("auth0", "", values);
  ASSERT_TRUE(put.ok()) << put.status()
                        << " fields: " << ViolationFields(put.status());
  const client::MaskedField* domain = FindField(put->credential, domain_field);
  ASSERT_NE(domain, nullptr);
  EXPECT_EQ(domain->display, "tenant.auth0.com");
  EXPECT_EQ(put->credential.readiness, client::Readiness::kReady);
  bool reported = false;
  for (const auto& f : put->findings) reported |= f.field == domain_field;
  EXPECT_TRUE(reported) << "the normalization was not reported";
  const client::ProviderInfo info = ProviderInfo("auth0");
  for (const auto& f : info.fields) {
    auto it = values.find(f.name);
    if (f.sensitive && it != values.end()) {
      EXPECT_FALSE(Contains<v1::PutCredentialResponse>(*put, it->second))
          << f.name;
    }
  }

  absl::StatusOr<client::CredentialSummary> got = Get("auth0", "default");
  ASSERT_TRUE(got.ok()) << got.status();
  domain = FindField(*got, domain_field);
  ASSERT_NE(domain, nullptr);
  EXPECT_EQ(domain->display, "tenant.auth0.com");

  // A domain that is not one is refused, naming the field.
  values[domain_field] = "not a domain/at all";
  absl::StatusOr<client::StoredCredential> bad = Put("auth0", "bad", values);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(HasViolation(bad.status(), domain_field))
      << ViolationFields(bad.status());
  EXPECT_EQ(Get("auth0", "bad").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CredentialServiceTest, GcpServiceAccountKeyFileGivesProjectAndEmail) {
  const std::string project = "cbit-project-" + RandomString(6, "0123456789");
  const std::string email = "deployer@" + project + ".iam.gserviceaccount.com";
  const std::string marker = RandomString(32);
  client::CredentialInput req;
  req.provider = "gcp";
  req.from_file = SecretBytes(GcpServiceAccountJson(project, email, marker));
  absl::StatusOr<client::StoredCredential> put = client_->PutCredential(req);
  ASSERT_TRUE(put.ok()) << put.status()
                        << " fields: " << ViolationFields(put.status());
  EXPECT_FALSE(Contains<v1::PutCredentialResponse>(*put, marker));
  EXPECT_EQ(put->credential.readiness, client::Readiness::kReady);
  bool has_project = false, has_email = false;
  for (const auto& f : put->credential.fields) {
    has_project |= f.display == project;
    has_email |= f.display == email;
  }
  EXPECT_TRUE(has_project) << FieldNames(put->credential);
  EXPECT_TRUE(has_email) << FieldNames(put->credential);

  client::CredentialCandidate vreq;
  vreq.provider = "gcp";
  vreq.from_file = SecretBytes(GcpServiceAccountJson(project, email, marker));
  absl::StatusOr<client::Diagnosis> v = client_->ValidateCredential(vreq);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->valid);
  EXPECT_FALSE(Contains<v1::ValidateCredentialResponse>(*v, marker));
  bool validate_project = false;
  for (const auto& f : v->fields) validate_project |= f.display == project;
  EXPECT_TRUE(validate_project);

  // A malformed key file: INVALID_ARGUMENT with a violation, nothing stored.
  client::CredentialInput broken;
  broken.provider = "gcp";
  broken.profile = "broken";
  broken.from_file =
      SecretBytes("{\"type\": \"service_account\", \"project_id\": ");
  absl::StatusOr<client::StoredCredential> bad = client_->PutCredential(broken);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(GetFieldViolations(bad.status()).empty());
  EXPECT_EQ(Get("gcp", "broken").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CredentialServiceTest, CustomSecretsAreStoredMasked) {
  const std::string db_url =
      "postgres://app:" + RandomString(24) + "@db.internal:5432/app";
  const std::string api_key = "sk_live_" + RandomString(32);
  absl::StatusOr<client::StoredCredential> put =
      Put("custom", "myapp",
          {{"database_url", db_url}, {"stripe_api_key", api_key}});
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_FALSE(Contains<v1::PutCredentialResponse>(*put, db_url));
  EXPECT_FALSE(Contains<v1::PutCredentialResponse>(*put, api_key));
  const client::MaskedField* url = FindField(put->credential, "database_url");
  const client::MaskedField* key = FindField(put->credential, "stripe_api_key");
  ASSERT_NE(url, nullptr);
  ASSERT_NE(key, nullptr);
  EXPECT_TRUE(url->set);
  EXPECT_TRUE(url->sensitive);
  EXPECT_TRUE(key->set);
  EXPECT_TRUE(key->sensitive);
  EXPECT_TRUE(absl::EndsWith(key->display, api_key.substr(api_key.size() - 4)));
  EXPECT_EQ(put->credential.readiness, client::Readiness::kReady);

  absl::StatusOr<client::CredentialSummary> got = Get("custom", "myapp");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->fields.size(), 2u);
  EXPECT_FALSE(Contains(*got, api_key));
}

TEST_F(CredentialServiceTest, VersionsAreKeptAndKeepExistingUpdates) {
  const std::string secret = NewAwsSecret();
  const std::string first_id = NewAwsKeyId();
  absl::StatusOr<client::StoredCredential> v1r = Put(
      "aws", "", {{"access_key_id", first_id}, {"secret_access_key", secret}});
  ASSERT_TRUE(v1r.ok()) << v1r.status();

  // Only the key ID changes; the stored secret is kept.
  absl::StatusOr<client::StoredCredential> v2r = Put(
      "aws", "", {{"access_key_id", kAwsExampleKeyId}}, /*keep_existing=*/true);
  ASSERT_TRUE(v2r.ok()) << v2r.status();
  EXPECT_EQ(v2r->credential.version, 2);
  EXPECT_EQ(v2r->credential.version_count, 2);
  EXPECT_EQ(v2r->credential.readiness, client::Readiness::kReady);
  EXPECT_NE(v2r->credential.fingerprint, v1r->credential.fingerprint);
  const client::MaskedField* kept =
      FindField(v2r->credential, "secret_access_key");
  ASSERT_NE(kept, nullptr);
  EXPECT_TRUE(kept->set);
  EXPECT_EQ(FindField(v2r->credential, "access_key_id")->display, "AKIA…MPLE");

  // Without keep_existing the missing secret makes it refused.
  absl::StatusOr<client::StoredCredential> partial =
      Put("aws", "", {{"access_key_id", kAwsExampleKeyId}});
  EXPECT_EQ(partial.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(HasViolation(partial.status(), "secret_access_key"))
      << ViolationFields(partial.status());

  // Version 1 is still readable; the current one is 2.
  absl::StatusOr<client::CredentialSummary> old = Get("aws", "default", 1);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->version, 1);
  EXPECT_EQ(old->fingerprint, v1r->credential.fingerprint);
  EXPECT_EQ(FindField(*old, "access_key_id")->display,
            absl::StrCat(first_id.substr(0, 4), "…", first_id.substr(16)));
  absl::StatusOr<client::CredentialSummary> cur = Get("aws", "default");
  ASSERT_TRUE(cur.ok()) << cur.status();
  EXPECT_EQ(cur->version, 2);
  EXPECT_EQ(cur->version_count, 2);
  EXPECT_EQ(Get("aws", "default", 99).status().code(),
            absl::StatusCode::kNotFound);

  // Custom: keep_existing adds a secret to the stored ones.
  ASSERT_TRUE(Put("custom", "", {{"a", "alpha-" + RandomString(12)}}).ok());
  absl::StatusOr<client::StoredCredential> more =
      Put("custom", "", {{"b", "bravo-" + RandomString(12)}}, true);
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_NE(FindField(more->credential, "a"), nullptr);
  EXPECT_NE(FindField(more->credential, "b"), nullptr);
  EXPECT_EQ(more->credential.version, 2);

  absl::StatusOr<int64_t> d = client_->DeleteCredential("aws", "");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, 2);
  EXPECT_EQ(Get("aws", "default", 1).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(CredentialServiceTest, TwoProfilesAreIndependent) {
  ASSERT_TRUE(Put("aws", "",
                  {{"access_key_id", kAwsExampleKeyId},
                   {"secret_access_key", kAwsExampleSecret}})
                  .ok());
  const std::string staging_id = NewAwsKeyId();
  ASSERT_TRUE(Put("aws", "staging",
                  {{"access_key_id", staging_id},
                   {"secret_access_key", NewAwsSecret()}})
                  .ok());
  client::ListCredentialsOptions lreq;
  lreq.provider = "aws";
  absl::StatusOr<client::CredentialPage> list = client_->ListCredentials(lreq);
  ASSERT_TRUE(list.ok()) << list.status();
  std::set<std::string> profiles;
  for (const auto& c : list->credentials) profiles.insert(c.profile);
  EXPECT_EQ(profiles, (std::set<std::string>{"default", "staging"}));

  absl::StatusOr<client::CredentialSummary> staging = Get("aws", "staging");
  ASSERT_TRUE(staging.ok()) << staging.status();
  EXPECT_EQ(staging->version, 1);
  EXPECT_NE(FindField(*staging, "access_key_id")->display, "AKIA…MPLE");

  ASSERT_TRUE(client_->DeleteCredential("aws", "staging").ok());
  EXPECT_EQ(Get("aws", "staging").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<client::CredentialSummary> def = Get("aws", "default");
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_EQ(FindField(*def, "access_key_id")->display, "AKIA…MPLE");
}

TEST_F(CredentialServiceTest,
       BadInputIsRefusedWithFieldViolationsAndNothingStored) {
  // A version already stored must not change on a refused update.
  ASSERT_TRUE(Put("aws", "",
                  {{"access_key_id", kAwsExampleKeyId},
                   {"secret_access_key", kAwsExampleSecret}})
                  .ok());
  struct Case {
    const char* what;
    std::string provider;
    std::string profile;
    std::map<std::string, std::string> values;
    const char* field;
  };
  const std::vector<Case> cases = {
      {"short key id",
       "aws",
       "",
       {{"access_key_id", "AKIA123"}, {"secret_access_key", kAwsExampleSecret}},
       "access_key_id"},
      {"key id prefix typo",
       "aws",
       "",
       {{"access_key_id", "AKAIIOSFODNN7EXAMPLE"},
        {"secret_access_key", kAwsExampleSecret}},
       "access_key_id"},
      {"short secret",
       "aws",
       "",
       {{"access_key_id", kAwsExampleKeyId}, {"secret_access_key", "tooShort"}},
       "secret_access_key"},
      {"missing secret",
       "aws",
       "new",
       {{"access_key_id", kAwsExampleKeyId}},
       "secret_access_key"},
      {"unknown field",
       "aws",
       "new",
       {{"access_key_id", kAwsExampleKeyId},
        {"secret_access_key", kAwsExampleSecret},
        {"favourite_colour", "blue"}},
       "favourite_colour"},
      {"unknown provider", "no-such-cloud", "", {{"token", "x"}}, "provider"},
      {"bad profile name",
       "aws",
       "Bad Profile!",
       {{"access_key_id", kAwsExampleKeyId},
        {"secret_access_key", kAwsExampleSecret}},
       "profile"},
      {"value over the size limit",
       "custom",
       "big",
       {{"blob", std::string(70 * 1024, 'x')}},
       "blob"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    absl::StatusOr<client::StoredCredential> r =
        Put(c.provider, c.profile, c.values);
    ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument)
        << r.status();
    EXPECT_FALSE(r.status().message().empty());
    EXPECT_TRUE(HasViolation(r.status(), c.field))
        << ViolationFields(r.status());
    EXPECT_FALSE(absl::StrContains(r.status().ToString(), kAwsExampleSecret));
  }
  absl::StatusOr<client::CredentialSummary> cur = Get("aws", "default");
  ASSERT_TRUE(cur.ok()) << cur.status();
  EXPECT_EQ(cur->version, 1);
  EXPECT_EQ(cur->version_count, 1);
  EXPECT_EQ(Get("aws", "new").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Get("custom", "big").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<client::CredentialPage> list = client_->ListCredentials();
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->credentials.size(), 1u);
}

TEST_F(CredentialServiceTest, MissingCredentialsAreNotFound) {
  EXPECT_EQ(Get("aws", "").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Get("slack", "nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->DeleteCredential("github", "").status().code(),
            absl::StatusCode::kNotFound);
  client::CredentialCandidate v;
  v.provider = "vercel";
  absl::StatusOr<client::Diagnosis> r = client_->ValidateCredential(v);
  // Diagnosing what is stored when nothing is: NOT_FOUND, or a not-valid
  // answer naming the missing fields.
  if (r.ok()) {
    EXPECT_FALSE(r->valid);
  } else {
    EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  }
  EXPECT_EQ(Get("no-such-cloud", "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CredentialServiceTest, ValidateDiagnosesCandidatesWithoutStoring) {
  client::CredentialCandidate good;
  good.provider = "aws";
  good.values["access_key_id"] = SecretBytes(kAwsExampleKeyId);
  good.values["secret_access_key"] = SecretBytes(kAwsExampleSecret);
  absl::StatusOr<client::Diagnosis> r = client_->ValidateCredential(good);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->valid);
  EXPECT_FALSE(Contains<v1::ValidateCredentialResponse>(*r, kAwsExampleSecret));

  client::CredentialCandidate bad;
  bad.provider = "aws";
  bad.values["access_key_id"] = SecretBytes("AKIA-this-is-bad");
  r = client_->ValidateCredential(bad);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->valid);
  bool about_key = false;
  for (const auto& f : r->findings) {
    if (f.field == "access_key_id" && f.severity == client::Severity::kError) {
      about_key = !f.message.empty();
    }
  }
  EXPECT_TRUE(about_key) << FindingFields(r->findings);

  EXPECT_EQ(Get("aws", "").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CredentialServiceTest, ListCredentialsPages) {
  std::set<std::string> want;
  for (int i = 0; i < 5; ++i) {
    std::string profile = absl::StrCat("p", i);
    ASSERT_TRUE(
        Put("custom", profile, {{"k", "value-" + RandomString(10)}}).ok());
    want.insert("custom/" + profile);
  }
  ASSERT_TRUE(Put("aws", "",
                  {{"access_key_id", kAwsExampleKeyId},
                   {"secret_access_key", kAwsExampleSecret}})
                  .ok());
  want.insert("aws/default");

  std::set<std::string> seen;
  client::ListCredentialsOptions req;
  req.page_size = 2;
  int pages = 0;
  while (true) {
    ASSERT_LT(++pages, 10) << "paging does not end";
    absl::StatusOr<client::CredentialPage> r = client_->ListCredentials(req);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_LE(r->credentials.size(), 2u);
    for (const auto& c : r->credentials) {
      EXPECT_TRUE(seen.insert(c.provider + "/" + c.profile).second)
          << "listed twice: " << c.provider << "/" << c.profile;
    }
    if (r->next_page_token.empty()) break;
    req.page_token = r->next_page_token;
  }
  EXPECT_EQ(seen, want);
  EXPECT_GE(pages, 3);

  client::ListCredentialsOptions only_custom;
  only_custom.provider = "custom";
  absl::StatusOr<client::CredentialPage> r =
      client_->ListCredentials(only_custom);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->credentials.size(), 5u);

  client::ListCredentialsOptions bogus;
  bogus.page_token = "not a token!";
  absl::StatusOr<client::CredentialPage> b = client_->ListCredentials(bogus);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(HasViolation(b.status(), "page_token"));
}

TEST_F(CredentialServiceTest, RestartKeepsEverything) {
  ASSERT_TRUE(Put("aws", "",
                  {{"access_key_id", kAwsExampleKeyId},
                   {"secret_access_key", kAwsExampleSecret}})
                  .ok());
  ASSERT_TRUE(Put("aws", "", {{"access_key_id", NewAwsKeyId()}}, true).ok());
  ASSERT_TRUE(
      Put("custom", "svc", {{"token", "tok-" + RandomString(20)}}).ok());
  absl::StatusOr<client::CredentialPage> before = client_->ListCredentials();
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_EQ(before->credentials.size(), 2u);
  const std::string approver = broker_->approver_token();

  Restart();
  if (HasFatalFailure()) return;

  EXPECT_EQ(broker_->approver_token(), approver);
  absl::StatusOr<client::CredentialPage> after = client_->ListCredentials();
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->credentials.size(), before->credentials.size());
  for (size_t i = 0; i < after->credentials.size(); ++i) {
    const auto& a = before->credentials[i];
    const auto& b = after->credentials[i];
    EXPECT_EQ(a.provider, b.provider);
    EXPECT_EQ(a.profile, b.profile);
    EXPECT_EQ(a.version, b.version);
    EXPECT_EQ(a.version_count, b.version_count);
    EXPECT_EQ(a.fingerprint, b.fingerprint);
    EXPECT_EQ(a.readiness, b.readiness);
    ASSERT_EQ(a.fields.size(), b.fields.size());
    for (size_t j = 0; j < a.fields.size(); ++j) {
      EXPECT_EQ(a.fields[j].display, b.fields[j].display);
    }
  }
  absl::StatusOr<client::CredentialSummary> v1r = Get("aws", "default", 1);
  ASSERT_TRUE(v1r.ok()) << v1r.status();
  EXPECT_EQ(FindField(*v1r, "access_key_id")->display, "AKIA…MPLE");
  client::CredentialCandidate stored;
  stored.provider = "aws";
  absl::StatusOr<client::Diagnosis> v = client_->ValidateCredential(stored);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->valid);
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
