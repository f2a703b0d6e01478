#include "broker/core/sealed_record.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "broker/common/status_macros.h"

namespace credbroker {

SealedRecord::SealedRecord(SealedRecordFormat format, Store* store,
                           const Sealer* sealer, AuditLog* audit)
    : format_(format), store_(store), sealer_(sealer), audit_(audit) {}

std::string SealedRecord::AssociatedData(uint64_t counter) const {
  return absl::StrCat(format_.ad_label, std::string(1, '\0'), counter);
}

absl::Status SealedRecord::ReadAudit(LoadedRecord& out) const {
  AuditQuery query;
  query.kind = format_.audit_prefix;
  query.limit = 1000;
  while (true) {
    CB_ASSIGN_OR_RETURN(std::vector<AuditRecord> events,
                        store_->ListAudit(query));
    if (events.empty()) break;
    for (const AuditRecord& e : events) {
      if (e.outcome != "ok" || e.kind == format_.refused_kind) continue;
      out.newest_kind = e.kind;
      const int64_t n = AuditRecordNumber(e.detail);
      if (n >= 0) out.audited = n;
    }
    query.after_sequence = events.back().sequence;
  }
  return absl::OkStatus();
}

absl::StatusOr<LoadedRecord> SealedRecord::Load() const {
  LoadedRecord out;
  absl::StatusOr<std::string> text = store_->GetMeta(format_.meta_key);
  if (!text.ok() && !absl::IsNotFound(text.status())) return text.status();
  CB_RETURN_IF_ERROR(ReadAudit(out));
  if (!text.ok() || text->empty()) {
    // Nothing stored: the audit log must agree that nothing was written.
    out.state = out.audited > 0 ? LoadedRecord::kTampered : LoadedRecord::kNone;
    return out;
  }
  if (!absl::StartsWith(*text, format_.prefix)) {
    out.state = LoadedRecord::kOther;
    out.text = std::move(*text);
    return out;
  }
  std::vector<std::string> parts = absl::StrSplit(*text, ':');
  uint64_t counter = 0;
  absl::StatusOr<SecretBytes> plain = absl::DataLossError("malformed");
  if (parts.size() == 3 && absl::SimpleAtoi(parts[1], &counter)) {
    plain = sealer_->Open(absl::HexStringToBytes(parts[2]),
                          AssociatedData(counter), format_.what);
  }
  if (!plain.ok() || out.audited < 0 ||
      static_cast<uint64_t>(out.audited) != counter) {
    out.state = LoadedRecord::kTampered;
    return out;
  }
  out.state = LoadedRecord::kSealed;
  out.plain = std::move(*plain);
  out.counter = counter;
  return out;
}

absl::Status SealedRecord::Write(const SecretBytes& plain, uint64_t counter,
                                 AuditRecord event) const {
  absl::StrAppend(&event.detail, " (record ", counter, ")");
  FlowWrite write;
  write.meta.emplace_back(format_.meta_key,
                          absl::StrCat(format_.prefix, counter, ":",
                                       absl::BytesToHexString(sealer_->Seal(
                                           plain, AssociatedData(counter)))));
  write.audit.push_back(audit_->Stamped(std::move(event)));
  return store_->WriteFlow(write, audit_->HashFn());
}

absl::StatusOr<uint64_t> SealedRecord::NextCounter(uint64_t current) const {
  LoadedRecord audited;
  CB_RETURN_IF_ERROR(ReadAudit(audited));
  return std::max<uint64_t>(current,
                            audited.audited < 0 ? 0 : audited.audited) +
         1;
}

}  // namespace credbroker
