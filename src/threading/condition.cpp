#include "concur/threading/condition.hpp"

#include <stdexcept>

namespace concur::threading {

Condition::Condition() : own_(std::make_unique<RLock>()), reentrant_(own_.get()), lock_(own_.get()) {}
Condition::Condition(Lock& lock) noexcept : plain_(&lock), lock_(&lock) {}
Condition::Condition(RLock& lock) noexcept : reentrant_(&lock), lock_(&lock) {}
Condition::~Condition() = default;

bool Condition::acquire(bool blocking) noexcept {
  return plain_ ? plain_->acquire(blocking) : reentrant_->acquire(blocking);
}
bool Condition::acquire_until(core::Clock::time_point deadline) noexcept {
  return plain_ ? plain_->acquire_until(deadline) : reentrant_->acquire_until(deadline);
}
void Condition::release() {
  if (plain_)
    plain_->release();
  else
    reentrant_->release();
}

void Condition::check_owned(const char* what) const {
  if (!lock_->cond_is_owned()) throw std::logic_error(std::string("cannot ") + what + " on un-acquired lock");
}

bool Condition::wait_impl(core::Deadline deadline) {
  check_owned("wait");
  core::ThreadWaiter w;
  core::WaitNode node{.waiter = &w};
  {
    std::lock_guard g(waiters_lock_);
    waiters_.push_back(node);
  }
  auto saved = lock_->cond_release_save();
  bool woken = w.park(deadline);
  if (!woken) {
    std::lock_guard g(waiters_lock_);
    woken = !waiters_.remove(node);  // a notify popped us while we were timing out
  }
  lock_->cond_acquire_restore(saved);
  return woken;
}

void Condition::notify(std::size_t n) {
  check_owned("notify");
  std::lock_guard g(waiters_lock_);
  while (n-- > 0) {
    core::WaitNode* node = waiters_.pop_front();
    if (!node) break;
    node->waiter->wake();
  }
}

void Condition::notify_all() {
  check_owned("notify");
  std::lock_guard g(waiters_lock_);
  waiters_.wake_all();
}

}  // namespace concur::threading
