#include "broker/daemon/open_broker.h"

#include <iostream>
#include <utility>

#include "absl/time/clock.h"
#include "broker/common/status_macros.h"
#include "broker/core/keyring.h"
#include "broker/providers/registry.h"

namespace credbroker {
namespace {

absl::Time Now() { return absl::Now(); }

}  // namespace

OpenBroker::OpenBroker(Store* store, const Sealer* sealer,
                       const OpenBrokerOptions& options)
    : credentials_(store, sealer, &ProviderRegistry::Default(), Now, &audit_),
      audit_(store, sealer, Now),
      pin_(store, sealer, &audit_, Now, options.pin,
           options.passphrase_store
               ? PassphraseCheck([store](const SecretBytes& p) {
                   return VerifyPassphrase(*store, p);
                 })
               : PassphraseCheck()),
      requests_(store, &credentials_, &audit_, sealer, Now, options.requests) {}

OpenBroker::~OpenBroker() {
  stop_ticker_.Notify();
  if (ticker_.joinable()) ticker_.join();
}

absl::StatusOr<std::unique_ptr<OpenBroker>> OpenBroker::Open(
    Store* store, const Sealer* sealer, const OpenBrokerOptions& options) {
  std::unique_ptr<OpenBroker> broker(new OpenBroker(store, sealer, options));
  CB_RETURN_IF_ERROR(broker->Start(store, sealer, options));
  return broker;
}

absl::Status OpenBroker::Start(Store* store, const Sealer* sealer,
                               const OpenBrokerOptions& options) {
  CB_RETURN_IF_ERROR(pin_.Load());
  if (options.passkeys) {
    CB_ASSIGN_OR_RETURN(passkeys_,
                        options.passkeys(store, sealer, &audit_, &pin_));
  }
  Caller operator_caller;
  operator_caller.role = "operator";
  operator_caller.peer = "credbrokerd";
  if (options.first_open && options.reset_approval_pin) {
    operator_caller.peer = "credbrokerd --reset_approval_pin";
    CB_RETURN_IF_ERROR(pin_.Reset(operator_caller));
    std::cout
        << "credbrokerd: the approval PIN was cleared (--reset_approval_pin)\n";
  }
  if (options.first_open && !options.pin.required) {
    std::cerr << "credbrokerd: WARNING: --approval_factor=none: approvals need "
                 "no PIN, only "
                 "the approver token, which any process running as you (an "
                 "agent too) can "
                 "read. For tests only.\n";
    Caller started = operator_caller;
    started.peer = "credbrokerd --approval_factor=none";
    CB_RETURN_IF_ERROR(pin_.RecordDisabled(started));
  }
  CB_RETURN_IF_ERROR(requests_.Recover());
  ticker_ = std::thread([this] {
    while (
        !stop_ticker_.WaitForNotificationWithTimeout(absl::Milliseconds(250))) {
      requests_.Tick();
    }
  });
  return absl::OkStatus();
}

}  // namespace credbroker
