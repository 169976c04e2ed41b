#pragma once
/// \file threading.Semaphore and threading.BoundedSemaphore.
#include <chrono>
#include <cstdint>

#include "concur/core/futex.hpp"
#include "concur/core/waiter.hpp"

namespace concur::threading {

/// A counting semaphore (Python's `threading.Semaphore`). Waiters are served FIFO.
/// Lockable (acquire/release one unit). Thread safety: all members.
class Semaphore {
 public:
  /// Throws std::invalid_argument if `value` < 0.
  explicit Semaphore(std::int64_t value = 1);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;
  virtual ~Semaphore() = default;

  bool acquire(bool blocking = true) noexcept;
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) noexcept {
    return acquire_until(core::deadline_after(timeout));
  }
  bool acquire_until(core::Clock::time_point deadline) noexcept;
  /// Adds `n` units (std::invalid_argument if n < 1).
  virtual void release(std::int64_t n = 1);
  /// Free units now.
  [[nodiscard]] std::int64_t value() const noexcept { return core_.value(); }

  void lock() noexcept { acquire(); }
  bool try_lock() noexcept { return acquire(false); }
  void unlock() { release(); }

 protected:
  core::SemaphoreCore core_;
};

/// A semaphore that throws std::invalid_argument when released above its initial value.
class BoundedSemaphore final : public Semaphore {
 public:
  explicit BoundedSemaphore(std::int64_t value = 1);
  void release(std::int64_t n = 1) override;

 private:
  std::int64_t initial_;
  core::SpinLock release_lock_;
};

}  // namespace concur::threading
