#include "common/files.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace credbroker {
namespace {

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cbfiles.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  mode_t Mode(const std::string& path) {
    struct stat st;
    EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }
  std::string dir_;
};

TEST_F(FilesTest, EnsurePrivateDirCreatesParentsAndIs0700) {
  std::string d = dir_ + "/a/b/data";
  ASSERT_TRUE(EnsurePrivateDir(d).ok());
  EXPECT_EQ(Mode(d), 0700u);
  EXPECT_EQ(Mode(dir_ + "/a"), 0755u);
  // Loose permissions are tightened.
  chmod(d.c_str(), 0755);
  ASSERT_TRUE(EnsurePrivateDir(d).ok());
  EXPECT_EQ(Mode(d), 0700u);
}

TEST_F(FilesTest, EnsurePrivateDirRefusesAFile) {
  std::string f = dir_ + "/file";
  ASSERT_TRUE(WritePrivateFile(f, "x", false).ok());
  absl::Status s = EnsurePrivateDir(f);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(FilesTest, WritePrivateFileIs0600AndReadsBack) {
  std::string f = dir_ + "/token";
  ASSERT_TRUE(WritePrivateFile(f, "contents\n", false).ok());
  EXPECT_EQ(Mode(f), 0600u);
  absl::StatusOr<std::string> got = ReadFile(f);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "contents\n");
  ASSERT_TRUE(WritePrivateFile(f, "new", false).ok());
  EXPECT_EQ(*ReadFile(f), "new");
}

TEST_F(FilesTest, ExclusiveWriteNeverOverwrites) {
  std::string f = dir_ + "/key";
  ASSERT_TRUE(WritePrivateFile(f, "first", true).ok());
  absl::Status s = WritePrivateFile(f, "second", true);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(*ReadFile(f), "first");
}

TEST_F(FilesTest, ReadMissingFileIsNotFound) {
  EXPECT_EQ(ReadFile(dir_ + "/nope").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(FilesTest, LockFileExcludesAnotherProcess) {
  std::string path = dir_ + "/broker.lock";
  absl::StatusOr<LockFile> lock = LockFile::Acquire(path);
  ASSERT_TRUE(lock.ok()) << lock.status();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    absl::StatusOr<LockFile> second = LockFile::Acquire(path);
    bool refused =
        !second.ok() &&
        second.status().code() == absl::StatusCode::kFailedPrecondition &&
        second.status().message().find("already running") !=
            absl::string_view::npos;
    _exit(refused ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(FilesTest, LockIsReleasedWhenDestroyed) {
  std::string path = dir_ + "/broker.lock";
  { ASSERT_TRUE(LockFile::Acquire(path).ok()); }
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(LockFile::Acquire(path).ok() ? 0 : 1);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(DefaultDataDirTest, HonoursTheEnvironment) {
  setenv("CREDBROKER_DATA_DIR", "/tmp/somewhere", 1);
  EXPECT_EQ(DefaultDataDir(), "/tmp/somewhere");
  unsetenv("CREDBROKER_DATA_DIR");
  setenv("XDG_DATA_HOME", "/tmp/xdg", 1);
  EXPECT_EQ(DefaultDataDir(), "/tmp/xdg/credbroker");
  unsetenv("XDG_DATA_HOME");
  setenv("HOME", "/home/u", 1);
  EXPECT_EQ(DefaultDataDir(), "/home/u/.local/share/credbroker");
}

}  // namespace
}  // namespace credbroker
