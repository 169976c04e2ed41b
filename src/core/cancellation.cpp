#include "concur/core/cancellation.hpp"

namespace concur {

CancelSource::CancelSource() : state_(std::make_shared<core::EventCore>()) {}

bool CancelSource::cancel() noexcept {
  return state_->set();  // atomic test-and-set: one of several racing cancel() calls wins
}

bool CancelSource::cancelled() const noexcept { return state_->is_set(); }

CancelToken CancelSource::token() const noexcept { return CancelToken(state_); }

bool CancelToken::wait(core::Deadline deadline) const noexcept {
  if (!state_) {
    if (deadline) {
      std::atomic<uint32_t> never{0};
      while (core::futex_wait(never, 0, deadline)) {
      }
    }
    return false;
  }
  return core::wait_blocking(*state_, deadline);
}

}  // namespace concur
