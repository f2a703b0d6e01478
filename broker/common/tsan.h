#ifndef CREDBROKER_BROKER_COMMON_TSAN_H_
#define CREDBROKER_BROKER_COMMON_TSAN_H_

// Happens-before edges for ThreadSanitizer where the real edge is inside a
// library TSan cannot see (Debian's gRPC is not TSan-instrumented). No-ops
// in every other build.
//
// Use in pairs on the same address: everything a thread did before
// TsanHappensBefore(p) is ordered before what another thread does after a
// later TsanHappensAfter(p).

#if defined(__SANITIZE_THREAD__)
#define CREDBROKER_TSAN_ENABLED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CREDBROKER_TSAN_ENABLED 1
#endif
#endif

#ifdef CREDBROKER_TSAN_ENABLED
extern "C" {
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
}
#endif

namespace credbroker {

inline void TsanHappensBefore([[maybe_unused]] const void* p) {
#ifdef CREDBROKER_TSAN_ENABLED
  __tsan_release(const_cast<void*>(p));
#endif
}

inline void TsanHappensAfter([[maybe_unused]] const void* p) {
#ifdef CREDBROKER_TSAN_ENABLED
  __tsan_acquire(const_cast<void*>(p));
#endif
}

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_COMMON_TSAN_H_
