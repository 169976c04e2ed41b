#include "concur/threading/lock.hpp"

#include <stdexcept>

#include "concur/threading/thread.hpp"

namespace concur::threading {

bool Lock::acquire(bool blocking) noexcept {
  if (!blocking) return core_.try_acquire();
  return core::acquire_blocking(core_, std::nullopt);
}

bool Lock::acquire_until(core::Clock::time_point deadline) noexcept { return core::acquire_blocking(core_, deadline); }

void Lock::release() {
  if (!core_.release_bounded(1, 1)) throw std::logic_error("release unlocked lock");
}

bool Lock::cond_is_owned() const noexcept {
  // Python's Lock._is_owned: a Lock has no owner, so "owned" means "locked".
  if (core_.try_acquire()) {
    core_.release(1);
    return false;
  }
  return true;
}

std::uint64_t Lock::cond_release_save() {
  release();
  return 0;
}

void Lock::cond_acquire_restore(std::uint64_t /*saved*/) { acquire(); }

bool RLock::acquire_impl(core::Deadline deadline, bool blocking) noexcept {
  const auto me = get_ident();
  // Only the owner can observe owner_ == me, so this relaxed check is race-free for it.
  if (owner_.load(std::memory_order_relaxed) == me) {
    ++count_;
    return true;
  }
  bool got = !blocking ? lock_.acquire(false) : (deadline ? lock_.acquire_until(*deadline) : lock_.acquire());
  if (!got) return false;
  owner_.store(me, std::memory_order_relaxed);
  count_ = 1;
  return true;
}

bool RLock::acquire(bool blocking) noexcept { return acquire_impl(std::nullopt, blocking); }

bool RLock::acquire_until(core::Clock::time_point deadline) noexcept { return acquire_impl(deadline, true); }

void RLock::release() {
  if (owner_.load(std::memory_order_relaxed) != get_ident()) throw std::logic_error("cannot release un-acquired lock");
  if (--count_ == 0) {
    owner_.store(0, std::memory_order_relaxed);
    lock_.release();
  }
}

std::uint64_t RLock::recursion_count() const noexcept {
  return owner_.load(std::memory_order_relaxed) == get_ident() ? count_ : 0;
}

bool RLock::cond_is_owned() const noexcept { return owner_.load(std::memory_order_relaxed) == get_ident(); }

std::uint64_t RLock::cond_release_save() {
  if (!cond_is_owned()) throw std::logic_error("cannot release un-acquired lock");
  std::uint64_t saved = count_;
  count_ = 0;
  owner_.store(0, std::memory_order_relaxed);
  lock_.release();
  return saved;
}

void RLock::cond_acquire_restore(std::uint64_t saved) {
  lock_.acquire();
  owner_.store(get_ident(), std::memory_order_relaxed);
  count_ = saved;
}

}  // namespace concur::threading
