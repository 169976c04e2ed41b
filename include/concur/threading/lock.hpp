#pragma once
/// \file threading.Lock and threading.RLock.
#include <atomic>
#include <chrono>
#include <cstdint>

#include "concur/core/futex.hpp"
#include "concur/core/waiter.hpp"

namespace concur::threading {

namespace detail {
/// What a Condition needs from the lock it is bound to (Python's `_is_owned`,
/// `_release_save`, `_acquire_restore`).
class ConditionLock {
 public:
  virtual bool cond_is_owned() const noexcept = 0;
  virtual std::uint64_t cond_release_save() = 0;
  virtual void cond_acquire_restore(std::uint64_t saved) = 0;
  virtual ~ConditionLock() = default;
};
}  // namespace detail

/// A primitive lock (Python's `threading.Lock`): not owned, so any thread may release it.
/// Waiters are served in FIFO order. std Lockable and TimedLockable.
/// Thread safety: all members. The thread that is woken resumes inside `release()`'s hand-off.
class Lock final : public detail::ConditionLock {
 public:
  Lock() = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  /// Blocks until acquired; with `blocking == false` returns at once whether it got the lock.
  bool acquire(bool blocking = true) noexcept;
  /// Waits at most `timeout`; returns whether the lock was acquired.
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) noexcept {
    return acquire_until(core::deadline_after(timeout));
  }
  bool acquire_until(core::Clock::time_point deadline) noexcept;
  /// Releases the lock. Throws std::logic_error if it is not locked.
  void release();
  [[nodiscard]] bool locked() const noexcept { return core_.value() == 0; }

  void lock() noexcept { acquire(); }
  bool try_lock() noexcept { return acquire(false); }
  void unlock() { release(); }
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> d) noexcept { return acquire(d); }
  template <class Clock, class Duration>
  bool try_lock_until(std::chrono::time_point<Clock, Duration> t) noexcept {
    return acquire(t - Clock::now());
  }

  bool cond_is_owned() const noexcept override;
  std::uint64_t cond_release_save() override;
  void cond_acquire_restore(std::uint64_t saved) override;

 private:
  mutable core::SemaphoreCore core_{1};
};

/// A reentrant lock (Python's `threading.RLock`): the owner may acquire it again and must
/// release it as many times. std Lockable and TimedLockable.
/// Thread safety: all members; release() from a thread that does not own it throws.
class RLock final : public detail::ConditionLock {
 public:
  RLock() = default;
  RLock(const RLock&) = delete;
  RLock& operator=(const RLock&) = delete;

  bool acquire(bool blocking = true) noexcept;
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) noexcept {
    return acquire_until(core::deadline_after(timeout));
  }
  bool acquire_until(core::Clock::time_point deadline) noexcept;
  /// Throws std::logic_error if the calling thread does not own the lock.
  void release();
  /// True if any thread holds it.
  [[nodiscard]] bool locked() const noexcept { return owner_.load(std::memory_order_acquire) != 0; }
  /// How many times the calling thread holds it (0 if another thread or none does).
  [[nodiscard]] std::uint64_t recursion_count() const noexcept;

  void lock() noexcept { acquire(); }
  bool try_lock() noexcept { return acquire(false); }
  void unlock() { release(); }
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> d) noexcept { return acquire(d); }
  template <class Clock, class Duration>
  bool try_lock_until(std::chrono::time_point<Clock, Duration> t) noexcept {
    return acquire(t - Clock::now());
  }

  bool cond_is_owned() const noexcept override;
  std::uint64_t cond_release_save() override;
  void cond_acquire_restore(std::uint64_t saved) override;

 private:
  bool acquire_impl(core::Deadline deadline, bool blocking) noexcept;
  Lock lock_;
  std::atomic<std::uint64_t> owner_{0};  // get_ident() of the owner, 0 when free
  std::uint64_t count_ = 0;              // guarded by lock_ (only the owner touches it)
};

}  // namespace concur::threading
