#include "broker/common/locked_memory.h"

#include <sodium.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "absl/base/thread_annotations.h"
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

constexpr size_t kMinClass = 32;     // Smallest block.
constexpr size_t kMaxClass = 4096;   // Largest pooled block.
constexpr size_t kNumClasses = 8;    // 32, 64, ..., 4096.
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

// A private anonymous mapping, locked and excluded from core dumps when the
// system allows. Returns null when out of memory.
void* MapLocked(size_t bytes, bool* locked) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
#ifdef MADV_DONTDUMP
  madvise(p, bytes, MADV_DONTDUMP);
#endif
  *locked = mlock(p, bytes) == 0;
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

  LockedMemoryStats Stats() {
    absl::MutexLock lock(&mu_);
    return LockedMemoryStats{mapped_, locked_, live_};
  }

 private:
  struct FreeBlock {
    FreeBlock* next;
  };

  // Cuts a fresh region's remainder (or a new region) into blocks of one
  // class and returns them as a list.
  FreeBlock* Carve(size_t index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const size_t block_size = ClassSize(index);
    if (region_left_ < block_size) {
      bool locked = false;
      void* region = MapLocked(kRegionBytes, &locked);
      if (region == nullptr) return nullptr;
      mapped_ += kRegionBytes;
      if (locked) locked_ += kRegionBytes;
      region_next_ = static_cast<uint8_t*>(region);
      region_left_ = kRegionBytes;
    }
    // Take up to 16 blocks (at least one) from the current region.
    FreeBlock* head = nullptr;
    for (int i = 0; i < 16 && region_left_ >= block_size; ++i) {
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
    bool locked = false;
    void* p = MapLocked(bytes, &locked);
    if (p == nullptr) return nullptr;
    absl::MutexLock lock(&mu_);
    mapped_ += bytes;
    if (locked) locked_ += bytes;
    ++live_;
    return p;
  }

  void FreeLarge(void* p, size_t size) {
    const size_t bytes = RoundToPages(size);
    sodium_memzero(p, bytes);
    // Whether this mapping was locked is not recorded; munlock of an
    // unlocked range is harmless, and munmap unlocks anyway.
    const bool was_locked = munlock(p, bytes) == 0;
    munmap(p, bytes);
    absl::MutexLock lock(&mu_);
    mapped_ -= bytes;
    if (was_locked && locked_ >= bytes) locked_ -= bytes;
    --live_;
  }

  static size_t RoundToPages(size_t size) {
    const size_t page = PageSize();
    return (size + page - 1) / page * page;
  }

  absl::Mutex mu_;
  std::array<FreeBlock*, kNumClasses> free_ ABSL_GUARDED_BY(mu_) = {};
  uint8_t* region_next_ ABSL_GUARDED_BY(mu_) = nullptr;
  size_t region_left_ ABSL_GUARDED_BY(mu_) = 0;
  size_t mapped_ ABSL_GUARDED_BY(mu_) = 0;
  size_t locked_ ABSL_GUARDED_BY(mu_) = 0;
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

}  // namespace credbroker
