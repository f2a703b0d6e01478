#include "broker/core/refusal_audit.h"

#include <algorithm>
#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"

namespace credbroker {
namespace {

// New callers once max_callers are counted share this name.
constexpr char kOtherCallers[] = "other callers";

}  // namespace

RefusalAudit::RefusalAudit(AuditLog* log, Clock clock,
                           RefusalAuditPolicy policy)
    : log_(log), clock_(std::move(clock)), policy_(policy) {
  writer_ = std::thread([this] { WriterLoop(); });
}

RefusalAudit::~RefusalAudit() {
  Flush();
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  writer_.join();
}

bool RefusalAudit::Refused(const std::string& caller, AuditRecord event) {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  auto it = windows_.find(caller);
  if (it != windows_.end() && now - it->second.start >= policy_.interval) {
    Summarize(it->first, it->second);
    windows_.erase(it);
    it = windows_.end();
  }
  if (it == windows_.end()) {
    if (windows_.size() >= policy_.max_callers) SummarizeEnded(now, false);
    const std::string& key =
        windows_.size() < policy_.max_callers ? caller : kOtherCallers;
    it = windows_.try_emplace(key, Window{now}).first;
  }
  Window& w = it->second;
  if (w.recorded < policy_.per_caller) {
    ++w.recorded;
    return Enqueue(std::move(event));
  }
  ++w.suppressed;
  ++counts_.summarized;
  return false;
}

void RefusalAudit::Flush() {
  absl::MutexLock lock(&mu_);
  SummarizeEnded(clock_(), true);
  mu_.Await(absl::Condition(
      +[](RefusalAudit* r)
           ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu_) { return r->Idle(); },
      this));
}

RefusalAudit::Counts RefusalAudit::counts() const {
  absl::MutexLock lock(&mu_);
  return counts_;
}

void RefusalAudit::SummarizeEnded(absl::Time now, bool all) {
  for (auto it = windows_.begin(); it != windows_.end();) {
    if (all || now - it->second.start >= policy_.interval) {
      Summarize(it->first, it->second);
      it = windows_.erase(it);
    } else {
      ++it;
    }
  }
}

void RefusalAudit::Summarize(const std::string& caller, const Window& w) {
  if (w.suppressed == 0) return;
  AuditRecord e;
  e.kind = "refusals.summarized";
  e.peer = caller;
  e.outcome = "RATE_LIMITED";
  e.detail = absl::StrCat(w.suppressed, " more refusals from ", caller,
                          " within ", absl::FormatDuration(policy_.interval),
                          " were not recorded one by one");
  Enqueue(std::move(e));
}

bool RefusalAudit::Enqueue(AuditRecord event) {
  if (queue_.size() >= policy_.queue_limit) {
    ++counts_.dropped;
    ++dropped_unreported_;
    return false;
  }
  ++counts_.queued;
  queue_.push_back(std::move(event));
  return true;
}

bool RefusalAudit::Idle() const {
  return queue_.empty() && dropped_unreported_ == 0 && !writing_;
}

void RefusalAudit::WriterLoop() {
  while (true) {
    AuditRecord next;
    {
      absl::MutexLock lock(&mu_);
      auto work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty() || dropped_unreported_ > 0;
      };
      // Wake for work, or when the first interval with a pending summary
      // ends (the clock may be a test's: then Flush writes them).
      absl::Time first_end = absl::InfiniteFuture();
      for (const auto& [caller, w] : windows_) {
        if (w.suppressed > 0)
          first_end = std::min(first_end, w.start + policy_.interval);
      }
      if (first_end == absl::InfiniteFuture()) {
        mu_.Await(absl::Condition(&work));
      } else {
        mu_.AwaitWithTimeout(
            absl::Condition(&work),
            std::max(first_end - clock_(), absl::Milliseconds(10)));
      }
      SummarizeEnded(clock_(), false);
      if (!queue_.empty()) {
        next = std::move(queue_.front());
        queue_.pop_front();
      } else if (dropped_unreported_ > 0) {
        next.kind = "refusals.dropped";
        next.outcome = "RESOURCE_EXHAUSTED";
        next.detail = absl::StrCat(
            dropped_unreported_,
            " refusal events were dropped: too many at once to write");
        dropped_unreported_ = 0;
      } else if (stopping_) {
        return;
      } else {
        continue;
      }
      writing_ = true;
    }
    absl::Status s = log_->Record(std::move(next));
    if (!s.ok()) {
      std::cerr << "credbrokerd: could not write an audit event: "
                << s.message() << "\n";
    }
    absl::MutexLock lock(&mu_);
    writing_ = false;
  }
}

bool RefusalAudit::RefusedCall(const std::string& caller, std::string role,
                               std::string peer, absl::string_view rpc,
                               const absl::Status& refusal) {
  AuditRecord event;
  event.kind = "call.refused";
  event.role = std::move(role);
  event.peer = std::move(peer);
  event.action = std::string(rpc);
  event.outcome = absl::StatusCodeToString(refusal.code());
  return Refused(caller, std::move(event));
}

bool RefusalAudit::RefusedConnection(const std::string& caller,
                                     std::string peer, std::string detail) {
  AuditRecord event;
  event.kind = "connection.refused";
  event.peer = std::move(peer);
  event.outcome = "PERMISSION_DENIED";
  event.detail = std::move(detail);
  return Refused(caller, std::move(event));
}

}  // namespace credbroker
