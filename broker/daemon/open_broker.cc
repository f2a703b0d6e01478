#include "broker/daemon/open_broker.h"

#include <iostream>
#include <utility>

#include "absl/time/clock.h"
#include "broker/common/status_macros.h"
#include "broker/core/keyring.h"
#include "broker/core/row_mac.h"
#include "broker/providers/registry.h"

namespace credbroker {
namespace {

absl::Time Now() { return absl::Now(); }

}  // namespace

OpenBroker::OpenBroker(Store* store, std::unique_ptr<SpillingStore> flow_store,
                       const Sealer* sealer, const OpenBrokerOptions& options)
    : flow_store_(std::move(flow_store)),
      credentials_(store, sealer, &ProviderRegistry::Default(), Now, &audit_),
      audit_(store, sealer, Now),
      pin_(store, sealer, &audit_, Now, options.pin,
           options.passphrase_store
               ? PassphraseCheck([store](const SecretBytes& p) {
                   return VerifyPassphrase(*store, p);
                 })
               : PassphraseCheck()),
      requests_(flow_store_.get(), &credentials_, &audit_, sealer, Now,
                options.requests) {
  checks_.vet = [macs = RowMacs(sealer)](FlowWrite& rows) {
    return macs.DropUnverified(rows, "the spill", Now());
  };
  checks_.hash = audit_.HashFn();
}

OpenBroker::~OpenBroker() {
  stop_ticker_.Notify();
  if (ticker_.joinable()) ticker_.join();
}

absl::StatusOr<std::unique_ptr<OpenBroker>> OpenBroker::Open(
    Store* store, const Sealer* sealer, const OpenBrokerOptions& options) {
  CB_ASSIGN_OR_RETURN(std::unique_ptr<SpillingStore> flow_store,
                      SpillingStore::Open(store, options.spill));
  std::unique_ptr<OpenBroker> broker(
      new OpenBroker(store, std::move(flow_store), sealer, options));
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
  // A spill left by an earlier run: the store takes it now, or (still
  // refusing writes) its rows are read over the store's.
  flow_store_->TakeBack(checks_).IgnoreError();
  CB_RETURN_IF_ERROR(requests_.Recover());
  ticker_ = std::thread([this] {
    while (
        !stop_ticker_.WaitForNotificationWithTimeout(absl::Milliseconds(250))) {
      flow_store_->TakeBackWhenDue(checks_);
      requests_.Tick();
    }
  });
  return absl::OkStatus();
}

}  // namespace credbroker
