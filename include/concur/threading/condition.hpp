#pragma once
/// \file threading.Condition.
#include <chrono>
#include <memory>

#include "concur/core/futex.hpp"
#include "concur/core/waiter.hpp"
#include "concur/threading/lock.hpp"

namespace concur::threading {

/// A condition variable bound to a lock (Python's `threading.Condition`); by default it owns an
/// RLock. std Lockable: `std::unique_lock g(cv)` acquires the underlying lock.
///
/// wait/notify must be called with the lock held (std::logic_error otherwise, as Python's
/// RuntimeError). Waiters are woken in FIFO order. A woken waiter resumes once it has
/// re-acquired the lock. Thread safety: all members.
class Condition {
 public:
  Condition();
  explicit Condition(Lock& lock) noexcept;
  explicit Condition(RLock& lock) noexcept;
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;
  ~Condition();

  bool acquire(bool blocking = true) noexcept;
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) noexcept {
    return acquire_until(core::deadline_after(timeout));
  }
  bool acquire_until(core::Clock::time_point deadline) noexcept;
  void release();
  void lock() noexcept { acquire(); }
  bool try_lock() noexcept { return acquire(false); }
  void unlock() { release(); }

  /// Releases the lock, waits for a notify, re-acquires. Always true.
  bool wait() { return wait_impl(std::nullopt); }
  /// As wait(), at most `timeout`; false if it timed out.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_impl(core::deadline_after(timeout));
  }
  bool wait_until(core::Clock::time_point deadline) { return wait_impl(deadline); }

  /// Waits until `pred()` is true; returns its last value.
  template <class Pred>
  auto wait_for(Pred pred) -> decltype(pred()) {
    auto r = pred();
    while (!r) {
      wait_impl(std::nullopt);
      r = pred();
    }
    return r;
  }
  /// Waits until `pred()` is true or `timeout` passes; returns the predicate's last value.
  template <class Pred, class Rep, class Period>
  auto wait_for(Pred pred, std::chrono::duration<Rep, Period> timeout) -> decltype(pred()) {
    auto deadline = core::deadline_after(timeout);
    auto r = pred();
    while (!r) {
      if (core::Clock::now() >= deadline) break;
      wait_impl(deadline);
      r = pred();
    }
    return r;
  }

  /// Wakes up to `n` waiters.
  void notify(std::size_t n = 1);
  void notify_all();

 private:
  bool wait_impl(core::Deadline deadline);
  void check_owned(const char* what) const;
  std::unique_ptr<RLock> own_;
  Lock* plain_ = nullptr;
  RLock* reentrant_ = nullptr;
  detail::ConditionLock* lock_;
  core::SpinLock waiters_lock_;
  core::WaitList waiters_;
};

}  // namespace concur::threading
