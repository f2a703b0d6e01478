// Teaches ThreadSanitizer about absl::Mutex and absl::Notification in the
// tsan build only (CREDBROKER_TSAN; linked into every executable).
//
// Debian's Abseil is not built with -fsanitize=thread, so its Mutex carries
// no TSan annotations: TSan would see no happens-before edge between one
// thread's Unlock and the next thread's Lock, and report every guarded
// member as a data race. This file defines the few Mutex, CondVar,
// ReleasableMutexLock and Notification entry points that our code and gRPC
// call (gRPC's own mutexes and condition variables are Abseil's); each forwards
// to Abseil's own definition (dlsym RTLD_NEXT) and adds the edge with
// __tsan_release /
// __tsan_acquire on the object's address. Definitions in the executable
// take precedence over the shared library's, for calls from gRPC too.
//
// Only edges are added (no lock-order or double-lock checking), so a real
// race between two accesses that hold the same absl::Mutex cannot exist, and
// an access that holds no lock is still reported.
#include <dlfcn.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/base/config.h"
#include "absl/base/options.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

extern "C" {
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
}

namespace {

#define CREDBROKER_STR2(x) #x
#define CREDBROKER_STR(x) CREDBROKER_STR2(x)

// "_ZN4absl7debian3" for Debian's inline namespace absl::debian3.
std::string Prefix(const char* qualifier) {
  const char* ns = CREDBROKER_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  return std::string(qualifier) + "4absl" + std::to_string(std::strlen(ns)) +
         ns;
}

template <typename Fn>
Fn Real(const std::string& symbol) {
  void* f = dlsym(RTLD_NEXT, symbol.c_str());
  if (f == nullptr) {
    std::fprintf(stderr, "tsan shim: %s not found\n", symbol.c_str());
    std::abort();
  }
  return reinterpret_cast<Fn>(f);
}

// The mutex whose Await or Unlock this thread is inside. Abseil evaluates a
// waiter's Condition with the mutex held internally, after our wrapper's
// release: in Await on the waiting thread, and in Unlock on the unlocking
// thread (on the waiter's behalf). Condition::Eval orders itself against
// that mutex on both sides.
thread_local absl::Mutex* evaluating_for = nullptr;

// Sets evaluating_for for the duration of a call into Abseil.
class EvaluatingFor {
 public:
  explicit EvaluatingFor(absl::Mutex* mu) : outer_(evaluating_for) {
    evaluating_for = mu;
  }
  ~EvaluatingFor() { evaluating_for = outer_; }
  EvaluatingFor(const EvaluatingFor&) = delete;
  EvaluatingFor& operator=(const EvaluatingFor&) = delete;

 private:
  absl::Mutex* outer_;
};

void* Sync(const void* p) { return const_cast<void*>(p); }

// Abseil's debug-build deadlock detector keeps a lock graph behind its own
// spin lock, which TSan cannot see either; TSan's reports would be about
// that graph, not about our code. Lock order is left to review and to
// Abseil's detector in the other builds.
const bool kDeadlockDetectionOff = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  static const auto real =
      Real<void (*)(Mutex*)>(Prefix("_ZN") + "5Mutex4LockEv");
  real(this);
  __tsan_acquire(this);
}

void Mutex::Unlock() {
  static const auto real =
      Real<void (*)(Mutex*)>(Prefix("_ZN") + "5Mutex6UnlockEv");
  __tsan_release(this);
  EvaluatingFor scope(this);
  real(this);
}

bool Mutex::TryLock() {
  static const auto real =
      Real<bool (*)(Mutex*)>(Prefix("_ZN") + "5Mutex7TryLockEv");
  bool locked = real(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::ReaderLock() {
  static const auto real =
      Real<void (*)(Mutex*)>(Prefix("_ZN") + "5Mutex10ReaderLockEv");
  real(this);
  __tsan_acquire(this);
}

void Mutex::ReaderUnlock() {
  static const auto real =
      Real<void (*)(Mutex*)>(Prefix("_ZN") + "5Mutex12ReaderUnlockEv");
  __tsan_release(this);
  EvaluatingFor scope(this);
  real(this);
}

void Mutex::Await(const Condition& cond) {
  static const auto real = Real<void (*)(Mutex*, const Condition&)>(
      Prefix("_ZN") + "5Mutex5AwaitERKNS0_9ConditionE");
  __tsan_release(this);
  {
    EvaluatingFor scope(this);
    real(this, cond);
  }
  __tsan_acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  static const auto real =
      Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
          Prefix("_ZN") +
          "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  __tsan_release(this);
  bool met;
  {
    EvaluatingFor scope(this);
    met = real(this, cond, timeout);
  }
  __tsan_acquire(this);
  return met;
}

bool Condition::Eval() const {
  static const auto real =
      Real<bool (*)(const Condition*)>(Prefix("_ZNK") + "9Condition4EvalEv");
  Mutex* mu = evaluating_for;
  if (mu != nullptr) __tsan_acquire(mu);
  bool met = real(this);
  // The condition read the guarded state: whoever takes the mutex next is
  // ordered after this read.
  if (mu != nullptr) __tsan_release(mu);
  return met;
}

// CondVar waits release and retake the mutex inside Abseil, past our Lock
// and Unlock; gRPC's own mutex/condition-variable pairs (its thread pools,
// completion queues, timers) are absl::Mutex + absl::CondVar.
void CondVar::Wait(Mutex* mu) {
  static const auto real = Real<void (*)(CondVar*, Mutex*)>(
      Prefix("_ZN") + "7CondVar4WaitEPNS0_5MutexE");
  __tsan_release(mu);
  real(this, mu);
  __tsan_acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, absl::Duration)>(
      Prefix("_ZN") + "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  __tsan_release(mu);
  bool timed_out = real(this, mu, timeout);
  __tsan_acquire(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, absl::Time)>(
      Prefix("_ZN") + "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  __tsan_release(mu);
  bool timed_out = real(this, mu, deadline);
  __tsan_acquire(mu);
  return timed_out;
}

// ReleasableMutexLock is { Mutex* mu_; }; Release() unlocks inside Abseil.
static_assert(sizeof(ReleasableMutexLock) == sizeof(Mutex*),
              "absl::ReleasableMutexLock's layout changed");
void ReleasableMutexLock::Release() {
  static const auto real = Real<void (*)(ReleasableMutexLock*)>(
      Prefix("_ZN") + "19ReleasableMutexLock7ReleaseEv");
  Mutex* mu = *reinterpret_cast<Mutex**>(this);
  if (mu != nullptr) __tsan_release(mu);
  real(this);
}

// Notification is { Mutex mutex_; std::atomic<bool> notified_yet_; }; the
// edge is on notified_yet_'s address. HasBeenNotified() is inline (header)
// and gets no edge: a thread that learns of the notification only by
// polling it is not ordered after Notify() for TSan.
static_assert(sizeof(Notification) == sizeof(Mutex) + sizeof(void*),
              "absl::Notification's layout changed");
namespace {
void* NotifiedFlag(const Notification* n) {
  return Sync(reinterpret_cast<const char*>(n) + sizeof(Mutex));
}
}  // namespace

void Notification::Notify() {
  static const auto real =
      Real<void (*)(Notification*)>(Prefix("_ZN") + "12Notification6NotifyEv");
  __tsan_release(NotifiedFlag(this));
  real(this);
}

void Notification::WaitForNotification() const {
  static const auto real = Real<void (*)(const Notification*)>(
      Prefix("_ZNK") + "12Notification19WaitForNotificationEv");
  real(this);
  __tsan_acquire(NotifiedFlag(this));
}

bool Notification::WaitForNotificationWithTimeout(
    absl::Duration timeout) const {
  static const auto real = Real<bool (*)(const Notification*, absl::Duration)>(
      Prefix("_ZNK") +
      "12Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  bool notified = real(this, timeout);
  if (notified) __tsan_acquire(NotifiedFlag(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
