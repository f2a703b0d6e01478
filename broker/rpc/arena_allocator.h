// Response messages on a protobuf arena, for the unary calls whose answers
// are many small messages and strings (GetCredential, ValidateCredential,
// ListCredentials).
#ifndef CREDBROKER_BROKER_RPC_ARENA_ALLOCATOR_H_
#define CREDBROKER_BROKER_RPC_ARENA_ALLOCATOR_H_

#include <google/protobuf/arena.h>
#include <grpcpp/support/message_allocator.h>

#include <cstddef>

namespace credbroker {

// Arena options whose first block is `block` (`size` bytes, aligned to
// std::max_align_t, outliving the arena): the arena allocates only past it.
inline google::protobuf::ArenaOptions FirstBlockOptions(char* block,
                                                        size_t size) {
  google::protobuf::ArenaOptions options;
  options.initial_block = block;
  options.initial_block_size = size;
  return options;
}

// gRPC allocates each call's request and response through this. The
// response lives on an arena whose first block is inside the holder, so an
// answer of tens of nested messages costs one allocation instead of one per
// message and string, and is freed at once. The request stays an ordinary
// heap message: requests may carry secret values, which the handlers move
// into wiped memory (a string on an arena would be freed without the wipe).
template <typename Request, typename Response, size_t kFirstBlock = 4096>
class ResponseArenaAllocator final
    : public grpc::MessageAllocator<Request, Response> {
 public:
  grpc::MessageHolder<Request, Response>* AllocateMessages() override {
    return new Holder();
  }

 private:
  class Holder final : public grpc::MessageHolder<Request, Response> {
   public:
    Holder() : arena_(FirstBlockOptions(block_, kFirstBlock)) {
      this->set_request(&request_);
      this->set_response(
          google::protobuf::Arena::CreateMessage<Response>(&arena_));
    }
    Holder(const Holder&) = delete;
    Holder& operator=(const Holder&) = delete;
    void Release() override { delete this; }

   private:
    // Declared in this order: the arena uses the block, and is destroyed
    // (with the response) before it.
    alignas(std::max_align_t) char block_[kFirstBlock];
    google::protobuf::Arena arena_;
    Request request_;
  };
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_ARENA_ALLOCATOR_H_
