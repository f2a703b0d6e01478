// Memory for secret values: locked into RAM (mlock, so it is never written
// to swap) and left out of core dumps (MADV_DONTDUMP), wiped when freed.
//
// Locking is done once per region, not per allocation: mlock/munlock are
// system calls that split the process's memory map, and a per-value lock
// cost more than the rest of a credential read together. Small blocks come
// from 256 KiB regions carved into size classes (32 bytes to 4 KiB) and are
// reused; larger ones get a mapping of their own. Regions are kept for the
// life of the process, so the locked total is the peak of what was live.
//
// Pages are locked one page-sized piece at a time as blocks are first carved
// from them (or ahead, by ReserveLockedMemory), so a small RLIMIT_MEMLOCK
// still covers the pages in use rather than failing for a whole region.
// Locking is best effort: when RLIMIT_MEMLOCK is reached the memory is still
// handed out, only not locked (LockedMemoryStats says how much); a daemon
// checks at start with ReserveLockedMemory.
#ifndef CREDBROKER_COMMON_LOCKED_MEMORY_H_
#define CREDBROKER_COMMON_LOCKED_MEMORY_H_

#include <cstddef>

#include "absl/status/status.h"

namespace credbroker {

// `size` bytes (size > 0), contents unspecified. Never returns null (aborts
// when the system has no memory left, like operator new).
void* LockedAlloc(size_t size);

// Wipes and releases a block from LockedAlloc(size) with the same `size`.
void LockedFree(void* p, size_t size);

struct LockedMemoryStats {
  size_t mapped_bytes = 0;  // Regions and large blocks mapped so far.
  size_t locked_bytes = 0;  // Of those, locked into RAM.
  size_t unlocked_bytes =
      0;  // Pages in use (or reserved) that could not be locked.
  size_t live_blocks = 0;  // Handed out and not yet freed.
};
LockedMemoryStats GetLockedMemoryStats();

// Locks `bytes` (rounded up to pages, at most 256 KiB) of the pool now,
// ahead of use, for the secrets a daemon is about to hold. OK when those
// pages and every page used so far are locked; FAILED_PRECONDITION otherwise,
// naming RLIMIT_MEMLOCK, how much could be locked and how to raise the
// limit. The memory stays in the pool either way.
absl::Status ReserveLockedMemory(size_t bytes);

}  // namespace credbroker

#endif  // CREDBROKER_COMMON_LOCKED_MEMORY_H_
