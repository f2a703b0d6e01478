// Early-return helpers for absl::Status and absl::StatusOr, which Debian's
// Abseil (20220623) does not ship.
#ifndef CREDBROKER_BROKER_COMMON_STATUS_MACROS_H_
#define CREDBROKER_BROKER_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CB_STATUS_CONCAT_INNER_(a, b) a##b
#define CB_STATUS_CONCAT_(a, b) CB_STATUS_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define CB_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::absl::Status cb_status_ = (expr);      \
    if (!cb_status_.ok()) return cb_status_; \
  } while (0)

// `CB_ASSIGN_OR_RETURN(auto x, Foo());` declares/assigns x from a StatusOr,
// or returns its status from the enclosing function.
#define CB_ASSIGN_OR_RETURN(lhs, expr)                                      \
  CB_ASSIGN_OR_RETURN_IMPL_(CB_STATUS_CONCAT_(cb_statusor_, __LINE__), lhs, \
                            expr)

#define CB_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                              \
  if (!statusor.ok()) return statusor.status();        \
  lhs = std::move(statusor).value()

#endif  // CREDBROKER_BROKER_COMMON_STATUS_MACROS_H_
