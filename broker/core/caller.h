// Caller says who asked the core for something: the role of its token and
// what the kernel said about its process. The core records it in audit
// events, shows it to approvers, and binds grants and refusals to it.
#ifndef CREDBROKER_BROKER_CORE_CALLER_H_
#define CREDBROKER_BROKER_CORE_CALLER_H_

#include <cstdint>
#include <string>

namespace credbroker {

// Who is calling, for audit events, the approver's view and the checks
// that bind grants to a process and refuse self-approval.
struct Caller {
  std::string role;  // "agent", "approver".
  std::string peer;  // "node, pid 4242, /usr/bin/node", or a gRPC address.
  // From the kernel, for Unix socket connections; pid 0 when unknown.
  int64_t pid = 0;
  int64_t uid = -1;
  uint64_t start_time = 0;
  // Its process group and session id when it connected (0: unknown).
  int64_t process_group = 0;
  int64_t session_id = 0;
  std::string exe;
  // A TCP caller that presented a client certificate the broker verified
  // (--tls_client_ca): not a process, but a key holder the user set up.
  bool client_certificate = false;

  // Whether the kernel said which process this is.
  bool identified() const { return pid != 0; }

  bool SameProcess(const Caller& other) const {
    return pid != 0 && pid == other.pid && start_time == other.start_time;
  }
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CORE_CALLER_H_
