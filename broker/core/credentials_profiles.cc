// CredentialManager's profile choice (credentials.h): each provider's
// default profile, the resource bindings with their state, and
// ChooseProfile, which picks the profile a need uses.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broker/common/status_macros.h"
#include "broker/core/audit.h"
#include "broker/core/credentials.h"
#include "broker/core/credentials_internal.h"

namespace credbroker {

using credentials_internal::kDefaultProfile;

std::string DefaultProfileKey(absl::string_view provider) {
  return absl::StrCat("default_profile/", provider);
}

absl::StatusOr<std::string> CredentialManager::DefaultProfile(
    absl::string_view provider) {
  absl::StatusOr<std::string> stored =
      store_->GetMeta(DefaultProfileKey(provider));
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
  return stored;
}

absl::StatusOr<std::string> CredentialManager::ResolveProfile(
    absl::string_view provider, absl::string_view profile) {
  if (!profile.empty()) return CheckProfileName(profile);
  return DefaultProfile(provider);
}

absl::StatusOr<DefaultProfileChange> CredentialManager::SetDefaultProfile(
    absl::string_view provider_id, absl::string_view profile_in,
    const Caller& caller) {
  absl::StatusOr<DefaultProfileChange> change =
      ChangeDefaultProfile(provider_id, profile_in, caller);
  if (!change.ok()) {
    AuditRefused("credential.default", caller, provider_id, profile_in,
                 change.status());
  }
  return change;
}

absl::StatusOr<DefaultProfileChange> CredentialManager::ChangeDefaultProfile(
    absl::string_view provider_id, absl::string_view profile_in,
    const Caller& caller) {
  CB_ASSIGN_OR_RETURN(const Provider* provider, registry_->Get(provider_id));
  CB_ASSIGN_OR_RETURN(std::string profile, CheckProfileName(profile_in));
  const std::string& id = provider->spec().id;
  DefaultProfileChange change;
  change.provider = id;
  change.profile = profile;
  CB_ASSIGN_OR_RETURN(change.previous_profile, DefaultProfile(id));
  // The new default and its audit event, in one transaction.
  FlowWrite write;
  write.meta.emplace_back(DefaultProfileKey(id), profile);
  std::optional<AuditRecord> event =
      ChangeEvent("credential.default", caller, id, profile, absl::OkStatus(),
                  absl::StrCat("default profile ", change.previous_profile,
                               " -> ", profile));
  if (event.has_value()) write.audit.push_back(*std::move(event));
  CB_RETURN_IF_ERROR(
      store_->WriteFlow(write, audit_ != nullptr ? audit_->HashFn() : nullptr));
  absl::StatusOr<CredentialRecord> stored =
      store_->GetCredential(id, profile, 0);
  if (!stored.ok() && !absl::IsNotFound(stored.status()))
    return stored.status();
  change.configured = stored.ok();
  return change;
}

absl::StatusOr<BindingView> CredentialManager::ViewBinding(
    BindingRecord binding) {
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
    absl::StatusOr<BindingRecord> bound =
        binding_of ? binding_of(provider, resource)
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
          choice.binding->record.profile, ", but this need asks for ", provider,
          "/", choice.profile, ": make sure that account can manage it.");
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
