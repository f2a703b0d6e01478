#include "common/secret_input.h"

#include <unistd.h>

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

using ::testing::HasSubstr;

// A pipe whose read end holds `contents`, then end of file.
int PipeWith(const std::string& contents) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  EXPECT_EQ(write(fds[1], contents.data(), contents.size()),
            static_cast<ssize_t>(contents.size()));
  close(fds[1]);
  return fds[0];
}

TEST(SecretInputTest, EachCallTakesOneLineAndDropsItsLineEnd) {
  const int fd = PipeWith("first pass\r\nsecond\nlast-without-newline");
  absl::StatusOr<SecretBytes> first = ReadSecretLine(fd, "passphrase");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->Reveal(), "first pass");
  absl::StatusOr<SecretBytes> second = ReadSecretLine(fd, "passphrase");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->Reveal(), "second");
  absl::StatusOr<SecretBytes> last = ReadSecretLine(fd, "passphrase");
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->Reveal(), "last-without-newline");
  absl::StatusOr<SecretBytes> none = ReadSecretLine(fd, "passphrase");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(none.status().message(),
              HasSubstr("no passphrase could be read from file descriptor"));
  close(fd);
}

TEST(SecretInputTest, AnEmptyLineIsRefusedNamingWhatWasAskedFor) {
  const int fd = PipeWith("\nPIN\n");
  absl::StatusOr<SecretBytes> empty = ReadSecretLine(fd, "approval PIN");
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("no approval PIN"));
  close(fd);
}

TEST(SecretInputTest, TheLongestLineIsTakenAndOneByteMoreIsRefused) {
  const std::string longest(kMaxSecretLine, 'x');
  int fd = PipeWith(longest + "\n");
  absl::StatusOr<SecretBytes> line = ReadSecretLine(fd, "passphrase");
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->size(), kMaxSecretLine);
  close(fd);

  fd = PipeWith(longest + "y\n");
  line = ReadSecretLine(fd, "passphrase");
  EXPECT_EQ(line.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(line.status().message(),
              HasSubstr("the passphrase is longer than 4096 bytes"));
  // The message never carries the line itself.
  EXPECT_THAT(std::string(line.status().message()),
              ::testing::Not(HasSubstr("xxxx")));
  close(fd);
}

TEST(SecretInputTest, APromptOnANonTerminalStillReadsTheLine) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  // The "terminal" is a pipe here: the prompt goes to it, echo settings are
  // skipped (tcgetattr fails), and the line is read back from it.
  absl::StatusOr<SecretBytes> line;
  {
    const int rw = fds[0];
    ASSERT_EQ(write(fds[1], "typed\n", 6), 6);
    line = PromptSecretLine(rw, "", "PIN");
  }
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->Reveal(), "typed");
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace credbroker
