// SealedRecord keeps one of the broker's own records (the approval PIN's
// hash, the registered passkeys) in the store's meta table, sealed under a
// data-key subkey and numbered: "<prefix><N>:<hex of the sealed bytes>",
// with N bound into the associated data. Every write goes with an audit
// event that names it ("... (record N)") in one transaction, so a record
// whose N is not the one the newest such event names was put there behind
// the broker's back (an old copy restored, or one planted): Load says
// kTampered. Not thread-safe: its owner serializes calls.
#ifndef CREDBROKER_BROKER_CORE_SEALED_RECORD_H_
#define CREDBROKER_BROKER_CORE_SEALED_RECORD_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "broker/core/audit.h"
#include "broker/crypto/crypto.h"
#include "broker/store/store.h"
#include "common/secret.h"

namespace credbroker {

struct SealedRecordFormat {
  const char* meta_key;      // "approval_pin"
  const char* prefix;        // "v2:"
  const char* ad_label;      // "credbroker.approval_pin.v2"
  const char* audit_prefix;  // "pin.": the kinds of the record's events
  const char* refused_kind;  // "pin.refused": audited, writes no record
  const char* what;          // "the approval PIN record", for errors
};

// What Load found.
struct LoadedRecord {
  enum State {
    kNone,      // Nothing stored, and the audit log names no record.
    kSealed,    // A record in this format, matching the audit log.
    kOther,     // Text in another (older) format: `text`.
    kTampered,  // Unreadable, or not the record the audit log names.
  };
  State state = kNone;
  SecretBytes plain;     // kSealed: the opened bytes.
  uint64_t counter = 0;  // kSealed: its number.
  std::string text;      // kOther: the stored text.
  // The audit log: the number the newest event naming a record names (-1:
  // none does), and the kind of its newest successful event ("": none).
  int64_t audited = -1;
  std::string newest_kind;
};

class SealedRecord {
 public:
  // Every pointer must outlive the record.
  SealedRecord(SealedRecordFormat format, Store* store, const Sealer* sealer,
               AuditLog* audit);

  absl::StatusOr<LoadedRecord> Load() const;

  // Writes `plain` as record `counter` with `event` (its detail gets
  // " (record N)"), in one transaction.
  absl::Status Write(const SecretBytes& plain, uint64_t counter,
                     AuditRecord event) const;

  // The number to write next after `current`: above anything the audit log
  // names too (after a tampered record the stored one cannot be trusted).
  absl::StatusOr<uint64_t> NextCounter(uint64_t current) const;

 private:
  // Fills `out`'s audited and newest_kind from the audit log.
  absl::Status ReadAudit(LoadedRecord& out) const;
  std::string AssociatedData(uint64_t counter) const;

  const SealedRecordFormat format_;
  Store* const store_;
  const Sealer* const sealer_;
  AuditLog* const audit_;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CORE_SEALED_RECORD_H_
