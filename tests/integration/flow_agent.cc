// flow_agent: a scripted deployment agent for the flow integration tests,
// built on the client library's AgentSession. It runs as its own process
// because the broker refuses approvals from the requesting agent's process
// (and its descendants).
//
//   flow_agent --address ADDR --token_file PATH [--session_key K]
//
// Reads commands, one a line, from standard input:
//   need NEED_ID PROVIDER ACTION...   send a need (context region=us-east-1)
//   cancel NEED_ID                    cancel a need
//   release GRANT_ID                  ReleaseGrant; prints "released STATUS"
//   close                             half-close, wait for the end, exit 0
//   abort                             exit at once (a crashed agent)
// Prints "ready" once the session is open, "update JSON" for every update
// (grant values included: the test reads them and never prints them) and
// "end STATUS" when the stream ends.
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "client/credbroker/agent.h"
#include "client/internal/convert.h"
#include "google/protobuf/util/json_util.h"

namespace {

absl::Mutex out_mu;

void Emit(const std::string& line) {
  absl::MutexLock lock(&out_mu);
  std::cout << line << std::endl;
}

std::string Compact(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  credbroker::client::Options options;
  std::string token_file;
  credbroker::client::AgentSession::SessionOptions session;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--address") options.address = argv[i + 1];
    if (flag == "--token_file") token_file = argv[i + 1];
    if (flag == "--session_key") session.session_key = argv[i + 1];
  }
  options.timeout = absl::Seconds(10);
  absl::StatusOr<std::string> token =
      credbroker::client::ReadTokenFile(token_file);
  if (!token.ok()) {
    std::cerr << token.status() << "\n";
    return 1;
  }
  options.token = *token;
  session.agent_name = "flow_agent";
  session.on_update = [](const credbroker::client::NeedUpdate& u) {
    credbroker::v1::NeedUpdate m;
    credbroker::client::internal::ToProto(u, &m);
    Emit(absl::StrCat("update ", Compact(m)));
    credbroker::client::internal::WipeSecrets(m);
  };
  session.on_end = [](const absl::Status& s) {
    Emit(absl::StrCat("end ", s.ToString()));
  };
  auto agent = credbroker::client::AgentSession::Connect(options, session);
  if (!agent.ok()) {
    Emit(absl::StrCat("end ", agent.status().ToString()));
    return 1;
  }
  Emit("ready");
  std::string line;
  while (std::getline(std::cin, line)) {
    std::vector<std::string> words =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (words.empty()) continue;
    const std::string& cmd = words[0];
    if (cmd == "need" && words.size() >= 4) {
      credbroker::client::CredentialNeeded need;
      need.need_id = words[1];
      need.provider = words[2];
      need.action = absl::StrJoin(words.begin() + 3, words.end(), " ");
      need.context["region"] = "us-east-1";
      absl::Status s = (*agent)->SendNeed(need);
      if (!s.ok()) Emit(absl::StrCat("error ", s.ToString()));
    } else if (cmd == "cancel" && words.size() == 2) {
      absl::Status s = (*agent)->Cancel(words[1]);
      if (!s.ok()) Emit(absl::StrCat("error ", s.ToString()));
    } else if (cmd == "release" && words.size() == 2) {
      Emit(absl::StrCat("released ",
                        (*agent)->ReleaseGrant(words[1]).ToString()));
    } else if (cmd == "close") {
      (*agent)->Close().IgnoreError();
      return 0;
    } else if (cmd == "abort") {
      _exit(0);
    } else {
      Emit(absl::StrCat("error unknown command: ", line));
    }
  }
  (*agent)->Close().IgnoreError();
  return 0;
}
