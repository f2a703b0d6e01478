// The one place where absl::Status becomes grpc::Status (and back, for the
// client). Field violations travel as google.rpc.BadRequest inside the
// google.rpc.Status of the grpc-status-details-bin trailer.
#ifndef CREDBROKER_COMMON_STATUS_H_
#define CREDBROKER_COMMON_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace credbroker {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace credbroker

#endif  // CREDBROKER_COMMON_STATUS_H_
