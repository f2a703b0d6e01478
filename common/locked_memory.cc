#include "common/locked_memory.h"

#include <sodium.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <new>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

// Pooled blocks are poisoned while free, so AddressSanitizer still reports a
// use after free of a secret.
#if defined(__SANITIZE_ADDRESS__)
#define CREDBROKER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CREDBROKER_ASAN 1
#endif
#endif
#ifdef CREDBROKER_ASAN
#include <sanitizer/asan_interface.h>
#define CREDBROKER_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define CREDBROKER_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define CREDBROKER_POISON(p, n) ((void)(p), (void)(n))
#define CREDBROKER_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace credbroker {
namespace {

constexpr size_t kMinClass = 32;    // Smallest block.
constexpr size_t kMaxClass = 4096;  // Largest pooled block.
constexpr size_t kNumClasses = 8;   // 32, 64, ..., 4096.
constexpr size_t kRegionBytes = 256 * 1024;

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

size_t ClassIndex(size_t size) {
  size_t index = 0;
  size_t block = kMinClass;
  while (block < size) {
    block <<= 1;
    ++index;
  }
  return index;
}

size_t ClassSize(size_t index) { return kMinClass << index; }

size_t RoundToPages(size_t size) {
  const size_t page = PageSize();
  return (size + page - 1) / page * page;
}

// mlock and munlock as system calls: sanitizer runtimes replace the libc
// functions with ones that lock nothing and report success, and the tests
// run the daemon under them.
bool LockRange(void* p, size_t bytes) {
  return syscall(SYS_mlock, p, bytes) == 0;
}
void UnlockRange(void* p, size_t bytes) { syscall(SYS_munlock, p, bytes); }

// Locks [p, p + bytes), whole pages, one page at a time once the limit stops
// a single call: as much as RLIMIT_MEMLOCK allows. Returns the bytes locked.
size_t LockPages(uint8_t* p, size_t bytes) {
  if (LockRange(p, bytes)) return bytes;
  size_t locked = 0;
  for (size_t off = 0; off < bytes; off += PageSize()) {
    if (LockRange(p + off, PageSize())) locked += PageSize();
  }
  return locked;
}

// A private anonymous mapping left out of core dumps. Null when out of
// memory.
void* MapPrivate(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
#ifdef MADV_DONTDUMP
  madvise(p, bytes, MADV_DONTDUMP);
#endif
  return p;
}

class Pool {
 public:
  void* Alloc(size_t size) {
    if (size > kMaxClass) return AllocLarge(size);
    const size_t index = ClassIndex(size);
    absl::MutexLock lock(&mu_);
    FreeBlock* block = free_[index];
    if (block == nullptr) {
      block = Carve(index);
      if (block == nullptr) return nullptr;
    }
    CREDBROKER_UNPOISON(block, ClassSize(index));
    free_[index] = block->next;
    ++live_;
    return block;
  }

  void Free(void* p, size_t size) {
    if (size > kMaxClass) {
      FreeLarge(p, size);
      return;
    }
    const size_t index = ClassIndex(size);
    // The whole block: a caller's value may have been shorter than its class,
    // but nothing else was ever written past it.
    sodium_memzero(p, ClassSize(index));
    absl::MutexLock lock(&mu_);
    auto* block = static_cast<FreeBlock*>(p);
    block->next = free_[index];
    free_[index] = block;
    CREDBROKER_POISON(reinterpret_cast<uint8_t*>(block) + sizeof(FreeBlock),
                      ClassSize(index) - sizeof(FreeBlock));
    --live_;
  }

  // Locks the current region's next `bytes` ahead of carving (a fresh
  // region when the current one has less left).
  bool Reserve(size_t bytes) {
    bytes = std::min(RoundToPages(bytes), kRegionBytes);
    absl::MutexLock lock(&mu_);
    if (region_left_ < bytes && !NewRegion()) return false;
    LockThrough(region_next_ + bytes);
    return unlocked_ == 0;
  }

  LockedMemoryStats Stats() {
    absl::MutexLock lock(&mu_);
    return LockedMemoryStats{mapped_, locked_, unlocked_, live_};
  }

 private:
  struct FreeBlock {
    FreeBlock* next;
  };

  bool NewRegion() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    void* region = MapPrivate(kRegionBytes);
    if (region == nullptr) return false;
    mapped_ += kRegionBytes;
    region_next_ = static_cast<uint8_t*>(region);
    region_locked_end_ = region_next_;
    region_left_ = kRegionBytes;
    return true;
  }

  // Locks the current region's pages up to the one holding `end - 1`.
  void LockThrough(uint8_t* end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (end <= region_locked_end_) return;
    const size_t bytes =
        RoundToPages(static_cast<size_t>(end - region_locked_end_));
    const size_t locked = LockPages(region_locked_end_, bytes);
    locked_ += locked;
    unlocked_ += bytes - locked;
    region_locked_end_ += bytes;
  }

  // Cuts a fresh region's remainder (or a new region) into blocks of one
  // class and returns them as a list; their pages are locked first.
  FreeBlock* Carve(size_t index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const size_t block_size = ClassSize(index);
    if (region_left_ < block_size && !NewRegion()) return nullptr;
    const size_t count = std::min<size_t>(16, region_left_ / block_size);
    LockThrough(region_next_ + count * block_size);
    // Take up to 16 blocks (at least one) from the current region.
    FreeBlock* head = nullptr;
    for (size_t i = 0; i < count; ++i) {
      auto* block = reinterpret_cast<FreeBlock*>(region_next_);
      block->next = head;
      head = block;
      region_next_ += block_size;
      region_left_ -= block_size;
    }
    return head;
  }

  void* AllocLarge(size_t size) {
    const size_t bytes = RoundToPages(size);
    void* p = MapPrivate(bytes);
    if (p == nullptr) return nullptr;
    const size_t locked = LockPages(static_cast<uint8_t*>(p), bytes);
    absl::MutexLock lock(&mu_);
    mapped_ += bytes;
    locked_ += locked;
    unlocked_ += bytes - locked;
    large_locked_[p] = locked;
    ++live_;
    return p;
  }

  void FreeLarge(void* p, size_t size) {
    const size_t bytes = RoundToPages(size);
    sodium_memzero(p, bytes);
    UnlockRange(p, bytes);
    munmap(p, bytes);
    absl::MutexLock lock(&mu_);
    auto it = large_locked_.find(p);
    if (it != large_locked_.end()) {
      locked_ -= it->second;
      unlocked_ -= bytes - it->second;
      large_locked_.erase(it);
    }
    mapped_ -= bytes;
    --live_;
  }

  absl::Mutex mu_;
  std::array<FreeBlock*, kNumClasses> free_ ABSL_GUARDED_BY(mu_) = {};
  uint8_t* region_next_ ABSL_GUARDED_BY(mu_) = nullptr;
  size_t region_left_ ABSL_GUARDED_BY(mu_) = 0;
  // The current region's pages before this are locked (or were tried).
  uint8_t* region_locked_end_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Bytes locked of each live large block.
  std::map<void*, size_t> large_locked_ ABSL_GUARDED_BY(mu_);
  size_t mapped_ ABSL_GUARDED_BY(mu_) = 0;
  size_t locked_ ABSL_GUARDED_BY(mu_) = 0;
  size_t unlocked_ ABSL_GUARDED_BY(mu_) = 0;
  size_t live_ ABSL_GUARDED_BY(mu_) = 0;
};

// Never destroyed: secrets in static objects may be freed after main.
Pool& ThePool() {
  static Pool* pool = new Pool();
  return *pool;
}

}  // namespace

void* LockedAlloc(size_t size) {
  if (size == 0) size = 1;
  void* p = ThePool().Alloc(size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void LockedFree(void* p, size_t size) {
  if (p == nullptr) return;
  if (size == 0) size = 1;
  ThePool().Free(p, size);
}

LockedMemoryStats GetLockedMemoryStats() { return ThePool().Stats(); }

absl::Status ReserveLockedMemory(size_t bytes) {
  if (ThePool().Reserve(bytes)) return absl::OkStatus();
  const LockedMemoryStats stats = GetLockedMemoryStats();
  rlimit limit{};
  getrlimit(RLIMIT_MEMLOCK, &limit);
  const std::string soft = limit.rlim_cur == RLIM_INFINITY
                               ? std::string("unlimited")
                               : absl::StrCat(limit.rlim_cur, " bytes");
  return absl::FailedPreconditionError(
      absl::StrCat("memory for secrets cannot be locked into RAM (",
                   stats.unlocked_bytes, " bytes not locked, ",
                   stats.locked_bytes, " locked): RLIMIT_MEMLOCK is ", soft,
                   ", so secrets could be written to swap. Raise it to 1 MiB "
                   "or more: `ulimit -l 1024` "
                   "in the shell that starts credbrokerd, LimitMEMLOCK=1M in "
                   "its systemd unit, or a "
                   "memlock line in /etc/security/limits.conf"));
}

}  // namespace credbroker
