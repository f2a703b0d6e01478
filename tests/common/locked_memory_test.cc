#include "common/locked_memory.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/secret.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

// The VmFlags line of the mapping in /proc/self/smaps that holds `p`.
std::string VmFlagsOf(const void* p) {
  const auto addr = reinterpret_cast<uintptr_t>(p);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    // A mapping's header: "start-end perms offset dev inode [path]".
    std::vector<std::string> words = absl::StrSplit(line, ' ');
    if (!words.empty() && absl::StrContains(words[0], '-') &&
        !absl::StrContains(words[0], ':')) {
      std::vector<std::string> range = absl::StrSplit(words[0], '-');
      uint64_t start = 0, end = 0;
      if (range.size() == 2 && absl::SimpleHexAtoi(range[0], &start) &&
          absl::SimpleHexAtoi(range[1], &end)) {
        inside = addr >= start && addr < end;
        continue;
      }
    }
    if (inside && absl::StartsWith(line, "VmFlags:")) return line;
  }
  return "";
}

// Whether this environment lets the process lock `bytes` more (RLIMIT_MEMLOCK,
// sandboxes that refuse mlock, sanitizers): probed, not assumed.
bool MemlockAllows(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  // Checked in /proc too: AddressSanitizer's mlock does nothing and says 0.
  const bool locked =
      mlock(p, bytes) == 0 && absl::StrContains(VmFlagsOf(p), " lo");
  munmap(p, bytes);
  return locked;
}

TEST(LockedMemoryTest, BlocksOfEveryClassAreDistinctAndWritable) {
  std::vector<std::pair<uint8_t*, size_t>> blocks;
  std::set<uint8_t*> seen;
  for (size_t size : {1, 31, 32, 33, 100, 512, 4095, 4096, 4097, 70000}) {
    for (int i = 0; i < 20; ++i) {
      auto* p = static_cast<uint8_t*>(LockedAlloc(size));
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(seen.insert(p).second) << "block handed out twice";
      std::memset(p, static_cast<int>(size & 0xff), size);
      blocks.emplace_back(p, size);
    }
  }
  // No block overlapped another: each still holds its own pattern.
  for (const auto& [p, size] : blocks) {
    for (size_t i = 0; i < size; ++i) {
      ASSERT_EQ(p[i], static_cast<uint8_t>(size & 0xff)) << "size " << size;
    }
  }
  for (const auto& [p, size] : blocks) LockedFree(p, size);
}

TEST(LockedMemoryTest, AFreedBlockIsWipedAndReused) {
  const LockedMemoryStats before = GetLockedMemoryStats();
  auto* p = static_cast<uint8_t*>(LockedAlloc(200));
  std::memset(p, 0xAB, 200);
  EXPECT_EQ(GetLockedMemoryStats().live_blocks, before.live_blocks + 1);
  LockedFree(p, 200);
  EXPECT_EQ(GetLockedMemoryStats().live_blocks, before.live_blocks);
  // The next block of the same class is the one just freed, wiped.
  auto* q = static_cast<uint8_t*>(LockedAlloc(256));
  ASSERT_EQ(q, p);
  for (size_t i = sizeof(void*); i < 256; ++i) ASSERT_EQ(q[i], 0) << i;
  LockedFree(q, 256);
}

TEST(LockedMemoryTest, SecretValuesLiveInLockedMemoryLeftOutOfCoreDumps) {
  SecretBytes small("a-marker-secret-value");
  SecretBytes large(std::string(100000, 'x'));
  for (const SecretBytes* s : {&small, &large}) {
    std::string flags = VmFlagsOf(s->data());
    ASSERT_FALSE(flags.empty()) << "no mapping found for the value";
    // "dd": do not include in core dumps.
    EXPECT_TRUE(absl::StrContains(flags, " dd")) << flags;
    if (MemlockAllows(2 * 256 * 1024)) {
      // "lo": pages locked in memory.
      EXPECT_TRUE(absl::StrContains(flags, " lo")) << flags;
    }
  }
  if (MemlockAllows(256 * 1024)) {
    LockedMemoryStats stats = GetLockedMemoryStats();
    EXPECT_GT(stats.locked_bytes, 0u);
    EXPECT_LE(stats.locked_bytes, stats.mapped_bytes);
  }
}

TEST(LockedMemoryTest, ManySecretsReuseTheSameRegions) {
  // A steady stream of short-lived secrets does not keep mapping memory.
  { SecretBytes warm(std::string(64, 'w')); }
  const size_t mapped = GetLockedMemoryStats().mapped_bytes;
  for (int i = 0; i < 100000; ++i) {
    SecretBytes s(std::string(40 + i % 64, 'v'));
    ASSERT_EQ(s.size(), 40u + i % 64);
  }
  EXPECT_EQ(GetLockedMemoryStats().mapped_bytes, mapped);
}

// The daemon's start check: a reserve locked ahead of use (through the
// system call, so even under a sanitizer), or an error naming the limit.
TEST(LockedMemoryTest, AReserveIsLockedAheadOfUseOrTheLimitIsNamed) {
  absl::Status reserved = ReserveLockedMemory(64 * 1024);
  const LockedMemoryStats stats = GetLockedMemoryStats();
  if (!reserved.ok()) {
    EXPECT_EQ(reserved.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_TRUE(absl::StrContains(reserved.message(), "RLIMIT_MEMLOCK"))
        << reserved;
    EXPECT_GT(stats.unlocked_bytes, 0u);
    GTEST_SKIP() << "RLIMIT_MEMLOCK here is too small to lock 64 KiB: "
                 << reserved;
  }
  EXPECT_EQ(stats.unlocked_bytes, 0u);
  EXPECT_GE(stats.locked_bytes, 64u * 1024);
  // The next secrets live in those pages: locked already.
  SecretBytes value("a-value-in-the-reserve");
  EXPECT_TRUE(absl::StrContains(VmFlagsOf(value.data()), " lo"))
      << VmFlagsOf(value.data());
}

}  // namespace
}  // namespace credbroker
