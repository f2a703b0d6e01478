#include "client/cli/commands_lock.h"

#include <iostream>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/secret.h"

namespace credbroker {
namespace cli {
namespace {

constexpr char kNoInput[] =
    "is typed on a terminal (or read with the --*_fd flags), never taken from "
    "arguments, the environment or a piped stdin";

class LockCli {
 public:
  LockCli(const Args& args, std::unique_ptr<client::CredentialClient> client)
      : args_(args), client_(std::move(client)) {}

  int Run() {
    if (!args_.positional.empty()) {
      return UsageError(absl::StrCat(args_.command, " takes no argument"));
    }
    if (args_.command == "unlock") return Unlock();
    if (args_.command == "lock") return Lock();
    return Rekey();
  }

 private:
  // The secret of --`flag` N, or asked on the terminal.
  std::optional<SecretBytes> Secret(const std::string& flag,
                                    const std::string& label) {
    const int fd = FdFlag(args_, flag);
    if (fd == -2) return std::nullopt;
    return ReadSecretLine(fd, label);
  }
  int NoInput(const std::string& what) {
    return PrintError(
        absl::InvalidArgumentError(absl::StrCat(what, " ", kNoInput)));
  }

  int Unlock() {
    std::optional<SecretBytes> passphrase =
        Secret("passphrase_fd", "Store passphrase");
    if (!passphrase) return NoInput("the store's passphrase");
    absl::StatusOr<bool> unlocked = client_->Unlock(*passphrase);
    if (!unlocked.ok()) return PrintError(unlocked.status());
    std::cout
        << (*unlocked
                ? "Unlocked: the broker is restarting its listeners unlocked.\n"
                : "The broker was not locked.\n");
    return 0;
  }

  int Lock() {
    absl::StatusOr<bool> locked = client_->Lock();
    if (!locked.ok()) return PrintError(locked.status());
    std::cout
        << (*locked
                ? "Locked: the store's key is wiped from the broker's memory; "
                  "unlock with `credctl unlock`.\n"
                : "The broker was already locked.\n");
    return 0;
  }

  // The new passphrase: from --new_passphrase_fd, or typed twice.
  std::optional<SecretBytes> NewPassphrase(std::string& error) {
    const bool typed = !args_.Has("new_passphrase_fd");
    std::optional<SecretBytes> next =
        Secret("new_passphrase_fd", "New store passphrase");
    if (!next) {
      error = absl::StrCat("the new passphrase ", kNoInput);
      return std::nullopt;
    }
    if (next->size() < 8) {
      error =
          "the new passphrase is shorter than 8 characters; choose a longer "
          "one";
      return std::nullopt;
    }
    if (typed) {
      std::optional<SecretBytes> again =
          Secret("new_passphrase_fd", "The same passphrase again");
      if (!again || *again != *next) {
        error = "the two passphrases differ; nothing changed";
        return std::nullopt;
      }
    }
    return next;
  }

  absl::Status FillRekey(client::KeyChange& change) {
    const std::string to = args_.Flag("to", "passphrase");
    if (to != "passphrase" && to != "file") {
      return absl::InvalidArgumentError("--to is passphrase or file");
    }
    absl::StatusOr<client::LockState> state = client_->GetLockState();
    if (!state.ok()) return state.status();
    change.to = to == "file" ? client::KeySource::kKeyFile
                             : client::KeySource::kPassphrase;
    // In this order, one line each when read from one descriptor.
    if (state->key_source == client::KeySource::kPassphrase) {
      std::optional<SecretBytes> current =
          Secret("passphrase_fd", "Current store passphrase");
      if (!current)
        return absl::InvalidArgumentError(
            absl::StrCat("the passphrase ", kNoInput));
      change.current_passphrase = std::move(*current);
    }
    if (to == "passphrase") {
      std::string error;
      std::optional<SecretBytes> next = NewPassphrase(error);
      if (!next) return absl::InvalidArgumentError(error);
      change.new_passphrase = std::move(*next);
    }
    absl::StatusOr<client::ApprovalPinStatus> pin =
        client_->GetApprovalPinStatus();
    if (pin.ok() && pin->pin_set) {
      std::optional<SecretBytes> typed = Secret("pin_fd", "Approval PIN");
      if (!typed)
        return absl::InvalidArgumentError(
            absl::StrCat("the approval PIN ", kNoInput));
      change.pin = std::move(*typed);
    }
    return absl::OkStatus();
  }

  int Rekey() {
    client::KeyChange change;
    absl::Status filled = FillRekey(change);
    if (!filled.ok()) return PrintError(filled);
    absl::StatusOr<client::RekeyResult> done = client_->Rekey(change);
    if (!done.ok()) return PrintError(done.status());
    if (done->key_source == client::KeySource::kKeyFile)
      std::cout << "WARNING: ";
    std::cout << "Rekeyed: " << done->message << ".\n";
    return 0;
  }

  const Args& args_;
  std::unique_ptr<client::CredentialClient> client_;
};

}  // namespace

bool IsLockCommand(const std::string& c) {
  return c == "unlock" || c == "lock" || c == "rekey";
}

int RunLockCommand(const Args& args, const Context& ctx) {
  absl::StatusOr<std::unique_ptr<client::CredentialClient>> c =
      client::CredentialClient::Connect(ctx.approver);
  if (!c.ok()) return PrintError(c.status());
  return LockCli(args, std::move(*c)).Run();
}

}  // namespace cli
}  // namespace credbroker
