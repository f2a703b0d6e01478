// credctl's audit command (commands_audit.h): audit lists the audit
// log's events, page by page; audit verify checks its hash chain.
#include "client/cli/commands_audit.h"

#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/internal/convert.h"
#include "common/text.h"

namespace credbroker {
namespace cli {
namespace {

class AuditCli {
 public:
  AuditCli(const Args& args, client::CredentialClient* client)
      : args_(args), client_(client) {}

  int Run() { return Audit(); }

 private:
  bool json() const { return args_.Switch("json"); }

  int Audit() {
    if (!args_.positional.empty() && args_.positional[0] == "verify")
      return VerifyAudit();
    if (!args_.positional.empty()) {
      return UsageError("audit takes no argument but `verify`");
    }
    client::AuditQuery query;
    query.provider = args_.Flag("provider");
    query.kind = args_.Flag("kind");
    for (const char* name : {"since", "until"}) {
      std::string text = args_.Flag(name);
      if (text.empty()) continue;
      absl::Time t;
      std::string err;
      if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
        return UsageError(absl::StrCat("--", name,
                                       " takes an RFC 3339 time such as "
                                       "2026-11-26T10:00:00Z: ",
                                       err));
      }
      // Whole seconds, as typed.
      (std::string(name) == "since" ? query.since : query.until) =
          absl::FromUnixSeconds(absl::ToUnixSeconds(t));
    }
    client::AuditPage all;
    while (true) {
      absl::StatusOr<client::AuditPage> r = client_->ListAuditEvents(query);
      if (!r.ok()) return PrintError(r.status());
      for (auto& e : r->events) all.events.push_back(std::move(e));
      if (r->next_page_token.empty()) break;
      query.page_token = r->next_page_token;
    }
    if (json()) {
      std::cout
          << ToJson(client::internal::AsProto<v1::ListAuditEventsResponse>(all))
          << "\n";
      return 0;
    }
    for (const client::AuditEvent& e : all.events) {
      std::cout << e.sequence << "  "
                << absl::FormatTime("%Y-%m-%d %H:%M:%S", e.time,
                                    absl::UTCTimeZone())
                << "  " << e.kind << "  " << (e.role.empty() ? "-" : e.role);
      if (!e.provider.empty())
        std::cout << "  " << e.provider << "/" << e.profile;
      if (!e.action.empty()) std::cout << "  " << EscapeForTerminal(e.action);
      std::cout << "  " << e.outcome;
      if (!e.detail.empty())
        std::cout << "  (" << EscapeForTerminal(e.detail) << ")";
      std::cout << "\n";
    }
    return 0;
  }

  int VerifyAudit() {
    absl::StatusOr<client::AuditLogCheck> r = client_->VerifyAuditLog();
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      std::cout << ToJson(client::internal::AsProto<v1::VerifyAuditLogResponse>(
                       *r))
                << "\n";
    } else if (r->intact) {
      std::cout << "OK: the audit log is intact (" << r->events_checked
                << " events chained)\n";
    } else {
      std::cout << "BROKEN at event " << r->broken_at_sequence << ": "
                << r->problem << "\n"
                << "  " << r->events_checked
                << " events before it are intact.\n";
    }
    return r->intact ? 0 : 1;
  }

  const Args& args_;
  client::CredentialClient* client_;
};

}  // namespace

bool IsAuditCommand(const std::string& c) { return c == "audit"; }

int RunAuditCommand(const Args& args, client::CredentialClient& client) {
  return AuditCli(args, &client).Run();
}

}  // namespace cli
}  // namespace credbroker
