// OpenBroker: the broker's core while the store is unlocked — the
// credential and request managers, the audit log and the approval PIN, all
// on the opened data key — and the 250 ms tick that drives expiry and hands
// the spill back. The request manager writes through a SpillingStore over
// the store (broker/store/spilling_store.h), so that approvals go on while
// the store refuses writes. Made at
// each unlock and destroyed at each lock (broker/daemon/lifecycle.h), after
// the server and executor that used it have stopped. Its parts are
// thread-safe; making and destroying it are not.
#ifndef CREDBROKER_BROKER_DAEMON_OPEN_BROKER_H_
#define CREDBROKER_BROKER_DAEMON_OPEN_BROKER_H_

#include <functional>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "broker/core/approval_pin.h"
#include "broker/core/audit.h"
#include "broker/core/credentials.h"
#include "broker/core/passkeys.h"
#include "broker/core/requests.h"
#include "broker/crypto/crypto.h"
#include "broker/store/spilling_store.h"
#include "broker/store/store.h"

namespace credbroker {

struct OpenBrokerOptions {
  PinPolicy pin;
  RequestOptions requests;
  // Where the request manager's writes go while the store refuses them.
  // Unset: nowhere, and approvals fail closed.
  SpillOptions spill;
  // The store is passphrase-protected: the first PIN needs the passphrase.
  bool passphrase_store = false;
  // The daemon's first open: --reset_approval_pin applies, and a factor
  // turned off is audited.
  bool first_open = false;
  bool reset_approval_pin = false;
  // Makes the passkey factor (credbrokerd's passkey flags); unset: none.
  std::function<absl::StatusOr<std::unique_ptr<Passkeys>>(
      Store*, const Sealer*, AuditLog*, ApprovalPin*)>
      passkeys;
};

class OpenBroker {
 public:
  // `store` and `sealer` must outlive the result. Errors: the store cannot
  // be read or written (the PIN record, the audit log, recovering requests),
  // a spill left behind cannot be opened.
  static absl::StatusOr<std::unique_ptr<OpenBroker>> Open(
      Store* store, const Sealer* sealer, const OpenBrokerOptions& options);
  // Stops the tick.
  ~OpenBroker();

  CredentialManager* credentials() { return &credentials_; }
  RequestManager* requests() { return &requests_; }
  AuditLog* audit() { return &audit_; }
  ApprovalPin* pin() { return &pin_; }
  Passkeys* passkeys() { return passkeys_.get(); }

 private:
  OpenBroker(Store* store, std::unique_ptr<SpillingStore> flow_store,
             const Sealer* sealer, const OpenBrokerOptions& options);
  absl::Status Start(Store* store, const Sealer* sealer,
                     const OpenBrokerOptions& options);

  // The request manager's store; `checks_` vet what it hands back.
  const std::unique_ptr<SpillingStore> flow_store_;
  SpillingStore::TakeBackChecks checks_;
  CredentialManager credentials_;
  AuditLog audit_;
  ApprovalPin pin_;
  RequestManager requests_;
  std::unique_ptr<Passkeys> passkeys_;  // Null without the factor.
  absl::Notification stop_ticker_;
  std::thread ticker_;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_DAEMON_OPEN_BROKER_H_
