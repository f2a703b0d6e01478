// credbroker_bench --echo_server=PATH: the baseline server, an Echo service
// on the same gRPC stack and options as the broker.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_posix.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "credbroker/bench/v1/echo.grpc.pb.h"
#include "tests/bench/bench_harness.h"
#include "tests/bench/bench_scenarios.h"

namespace credbroker {
namespace benchmark {
namespace {

class EchoService final : public Echo::CallbackService {
 public:
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* ctx,
                                 const EchoMessage* req,
                                 EchoMessage* resp) override {
    if (req->reply_bytes() > 0) {
      resp->set_seq(req->seq());
      resp->mutable_payload()->assign(std::min(req->reply_bytes(), 4 << 20),
                                      'x');
    } else {
      *resp = *req;
    }
    grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }

  grpc::ServerWriteReactor<EchoMessage>* Watch(
      grpc::CallbackServerContext* ctx,
      const echo::WatchRequest* req) override {
    return new Stream(this, req->idle());
  }

  grpc::ServerUnaryReactor* Broadcast(grpc::CallbackServerContext* ctx,
                                      const EchoMessage* req,
                                      echo::BroadcastResponse* resp) override {
    absl::MutexLock lock(&mu_);
    for (Stream* s : live_) s->Send(*req);
    resp->set_watchers(static_cast<int>(live_.size()));
    grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }

 private:
  // A server stream with a small queue: one write in flight at a time.
  class Stream : public grpc::ServerWriteReactor<EchoMessage> {
   public:
    Stream(EchoService* service, bool idle) : service_(service), idle_(idle) {
      if (!idle_) {
        absl::MutexLock lock(&service_->mu_);
        service_->live_.insert(this);
      }
      EchoMessage hello;
      hello.set_seq(-1);
      Send(hello);
    }
    void Send(const EchoMessage& m) {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      queue_.push_back(m);
      if (!writing_) {
        writing_ = true;
        StartWrite(&queue_.front());
      }
    }
    void OnWriteDone(bool ok) override {
      absl::MutexLock lock(&mu_);
      queue_.pop_front();
      if (ok && !finished_ && !queue_.empty()) {
        StartWrite(&queue_.front());
      } else {
        writing_ = false;
      }
    }
    void OnCancel() override {
      {
        absl::MutexLock lock(&mu_);
        finished_ = true;
      }
      Finish(grpc::Status::CANCELLED);
    }
    void OnDone() override {
      if (!idle_) {
        absl::MutexLock lock(&service_->mu_);
        service_->live_.erase(this);
      }
      delete this;
    }

   private:
    EchoService* service_;
    bool idle_;
    absl::Mutex mu_;
    std::deque<EchoMessage> queue_ ABSL_GUARDED_BY(mu_);
    bool writing_ ABSL_GUARDED_BY(mu_) = false;
    bool finished_ ABSL_GUARDED_BY(mu_) = false;
  };

  absl::Mutex mu_;
  std::set<Stream*> live_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

int ServeEcho(const std::string& path) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  unlink(path.c_str());
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (lfd < 0 ||
      bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(lfd, 128) != 0) {
    std::cerr << "echo: cannot listen on " << path << ": "
              << std::strerror(errno) << "\n";
    return 1;
  }
  // The broker's server options.
  grpc::EnableDefaultHealthCheckService(true);
  EchoService service;
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(4 << 20);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) return 1;
  int wake[2];
  if (pipe2(wake, O_CLOEXEC) != 0) return 1;
  // Accepts as the broker does (without its SO_PEERCRED and /proc reads,
  // which cost once per connection, not per call).
  std::thread acceptor([&] {
    pollfd fds[2] = {{lfd, POLLIN, 0}, {wake[0], POLLIN, 0}};
    while (true) {
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents != 0) return;
      while (true) {
        int conn = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (conn < 0) break;
        grpc::AddInsecureChannelFromFd(server.get(), conn);
      }
    }
  });
  std::cout << "ready" << std::endl;
  int sig = 0;
  sigwait(&signals, &sig);
  (void)!write(wake[1], "x", 1);
  acceptor.join();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  close(lfd);
  unlink(path.c_str());
  return 0;
}

}  // namespace benchmark
}  // namespace credbroker
